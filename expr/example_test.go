package expr_test

import (
	"errors"
	"fmt"

	"github.com/graylane/graylane/expr"
)

func ExampleCompile() {
	// Compile once, when the rule is loaded...
	c, err := expr.Compile("#H['xyz'] == '1' and #H['age'] >= '18'")
	if err != nil {
		fmt.Println(err)
		return
	}
	// ...and match on every request.
	fmt.Println(c.Match(expr.Map{"xyz": "1", "age": "30"}))
	fmt.Println(c.Match(expr.Map{"xyz": "1", "age": "9"})) // numeric: 9 < 18
	fmt.Println(c.Match(expr.Map{"age": "30"}))            // xyz missing
	// Output:
	// true
	// false
	// false
}

// Conditions mean what they mean in Nepxion (Spring SpEL with Nepxion's
// comparator): strings equal exactly, and never equal a number; ordering is
// numeric where both sides read as numbers; null is what is missing; and
// anything Java would throw on makes the whole condition false.
func ExampleCondition_Match() {
	v := expr.Map{"ver": "1.0", "age": "20", "user": "xab1", "blank": " ", "vip": "yes"}
	for _, src := range []string{
		"#H['ver'] == '1'",                // strings: exact
		"#H['ver'] == 1",                  // a string never equals a number
		"#H['age'] >= '18'",               // ordering: numeric when both are numbers
		"#H['missing'] != 'x'",            // null is unequal to any string
		"#H['missing'] < '5'",             // null sorts lowest
		"#H['blank'] == null",             // blank counts as missing
		"#H['user'] matches 'ab.'",        // matches the whole string
		"#H['user'] matches '.ab.'",       //
		"#H['vip']",                       // a value is a condition: yes, on, true, 1
		"not (#H['user'] < 5)",            // Java throws (text against a number): false
		"#H['age'] between {18, 65}",      // between, inclusive
		"(#H['age'] > 18 ? 'on' : 'off')", // the ternary operator
		"#H['user'] + '-x' == 'xab1-x'",   // + joins strings, adds numbers
	} {
		c, err := expr.Compile(src)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%-32s %v\n", src, c.Match(v))
	}
	// Output:
	// #H['ver'] == '1'                 false
	// #H['ver'] == 1                   false
	// #H['age'] >= '18'                true
	// #H['missing'] != 'x'             true
	// #H['missing'] < '5'              true
	// #H['blank'] == null              true
	// #H['user'] matches 'ab.'         false
	// #H['user'] matches '.ab.'        true
	// #H['vip']                        true
	// not (#H['user'] < 5)             false
	// #H['age'] between {18, 65}       true
	// (#H['age'] > 18 ? 'on' : 'off')  true
	// #H['user'] + '-x' == 'xab1-x'    true
}

func ExampleValuesFunc() {
	// gRPC metadata, for example, holds lower-case names and lists of values.
	md := map[string][]string{"xyz": {"1"}}
	values := expr.ValuesFunc(func(name string) (string, bool) {
		if vs := md[name]; len(vs) > 0 {
			return vs[0], true
		}
		return "", false
	})
	c, err := expr.Compile("#H['xyz'] == '1'")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Match(values))
	// Output: true
}

func ExampleError() {
	_, err := expr.Compile("#H['xyz'] == '1' and #H['age'] >=")
	var e *expr.Error
	if errors.As(err, &e) {
		fmt.Println(e)
		fmt.Println(e.Snippet())
	}
	// Output:
	// column 34: unexpected end of expression
	// #H['xyz'] == '1' and #H['age'] >=
	//                                  ^
}
