// NepxionEval evaluates conditions the way Nepxion Discovery does, for the
// differential test of package expr (spel_test.go), which compiles it with
// javac at test time against the Spring expression jars.
//
// The evaluation copies, in behaviour, Nepxion Discovery 6.x.x:
// DiscoveryExpressionResolver.eval (a StandardEvaluationContext with the
// request's values as the variable H, getValue(context, Boolean.class), a
// null result or any exception reading as false) and
// DiscoveryTypeComparator (both sides read as BigDecimal when both are
// numbers in their toString form, else the standard comparator).
//
// Protocol: one case a line on stdin, fields separated by single spaces,
// each field the hex of its UTF-8 bytes: the expression, then name and value
// pairs (a blank value is left out of the map, as Nepxion leaves it out).
// One line out per case: T (true), F (false), E <exception> (an
// exception while evaluating: false), P <exception> (a parse error: false).
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

import org.springframework.expression.ExpressionParser;
import org.springframework.expression.spel.SpelEvaluationException;
import org.springframework.expression.spel.standard.SpelExpressionParser;
import org.springframework.expression.spel.support.StandardEvaluationContext;
import org.springframework.expression.spel.support.StandardTypeComparator;

public class NepxionEval {
    static final ExpressionParser PARSER = new SpelExpressionParser();

    // DiscoveryTypeComparator, as in Nepxion Discovery 6.x.x
    // (discovery-commons/discovery-common/.../expression/DiscoveryTypeComparator.java).
    static class DiscoveryTypeComparator extends StandardTypeComparator {
        @Override
        public int compare(Object left, Object right) throws SpelEvaluationException {
            if (left == null) {
                return right == null ? 0 : -1;
            } else if (right == null) {
                return 1;
            }
            try {
                BigDecimal leftValue = new BigDecimal(left.toString());
                BigDecimal rightValue = new BigDecimal(right.toString());
                return super.compare(leftValue, rightValue);
            } catch (Exception e) {
            }
            return super.compare(left, right);
        }
    }

    static final DiscoveryTypeComparator COMPARATOR = new DiscoveryTypeComparator();

    static String unhex(String s) {
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    // StringUtils.isNotBlank of commons-lang3.
    static boolean isNotBlank(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (!Character.isWhitespace(s.charAt(i))) {
                return true;
            }
        }
        return false;
    }

    static String oneLine(Throwable t) {
        String m = t.getClass().getSimpleName() + ": " + t.getMessage();
        return m.replace('\n', ' ').replace('\r', ' ');
    }

    static String eval(String expression, Map<String, String> map) {
        org.springframework.expression.Expression e;
        try {
            e = PARSER.parseExpression(expression);
        } catch (Exception ex) {
            return "P " + oneLine(ex);
        }
        // DiscoveryExpressionResolver.eval(expression, "H", map, comparator)
        StandardEvaluationContext context = new StandardEvaluationContext();
        context.setTypeComparator(COMPARATOR);
        context.setVariable("H", map);
        try {
            Boolean result = e.getValue(context, Boolean.class);
            return result != null && result.booleanValue() ? "T" : "F";
        } catch (Exception ex) {
            return "E " + oneLine(ex);
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.split(" ", -1);
            Map<String, String> map = new HashMap<String, String>();
            for (int i = 1; i + 1 < f.length; i += 2) {
                String value = unhex(f[i + 1]);
                // ExpressionStrategyCondition.createMap keeps only values
                // that are not blank (StringUtils.isNotBlank).
                if (isNotBlank(value)) {
                    map.put(unhex(f[i]), value);
                }
            }
            String r;
            try {
                r = eval(unhex(f[0]), map);
            } catch (Throwable t) { // an Error such as StackOverflowError escapes Nepxion's catch
                r = "X " + oneLine(t);
            }
            out.write(r);
            out.write('\n');
        }
        out.flush();
    }
}
