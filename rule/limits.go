package rule

import "strconv"

// Limits that keep a hostile document from costing more than a small
// multiple of its size. Every process watching a KV key parses whatever
// anyone with write access puts there, so the readers check the document's
// shape in one cheap pass before handing it to a decoder whose memory grows
// with nesting and with the number of values.

// MaxDocumentSize is the largest rule or spec document accepted, in bytes:
// Consul's KV store refuses larger values, so a larger document cannot be
// a rule that came through Consul.
const MaxDocumentSize = 512 << 10

// maxDepth is the deepest nesting of JSON arrays and objects or XML
// elements accepted. A rule nests five deep in XML and seven in Nepxion's
// JSON; decoders keep state per level, so unbounded nesting costs hundreds
// of bytes of memory per byte of input.
const maxDepth = 64

// Each value (JSON), element or attribute (XML), or node (YAML) costs the
// decoder and the tree a few hundred bytes, so a document padded with
// two-byte items ("[1,1,1,...", "<a/><a/>...") would cost a hundred times
// its size. A document of n bytes may hold at most n/bytesPerItem +
// itemAllowance of them. Real rules spend more bytes on an item (a
// condition is a line of text) and hold a few hundred at most, so only
// padding meets the bound.
const (
	bytesPerItem  = 16
	itemAllowance = 4096
)

func checkSize(data []byte) error {
	if len(data) > MaxDocumentSize {
		return &Error{Msg: "document of " + strconv.Itoa(len(data)) + " bytes exceeds the limit of " + strconv.Itoa(MaxDocumentSize) + " bytes (Consul's largest value)", Err: ErrInvalid}
	}
	return nil
}

// shape counts nesting and items during a pre-check pass.
type shape struct {
	data       []byte
	depth      int
	items, max int
}

func newShape(data []byte) shape {
	return shape{data: data, max: len(data)/bytesPerItem + itemAllowance}
}

func (s *shape) open(off int) *Error {
	s.depth++
	if s.depth > maxDepth {
		return syntaxErr(newLineIndex(s.data).at(off), "document nested more than "+strconv.Itoa(maxDepth)+" levels deep", nil)
	}
	return s.item(off)
}

func (s *shape) item(off int) *Error {
	s.items++
	if s.items > s.max {
		return syntaxErr(newLineIndex(s.data).at(off), "document holds too many values for its size (at most one per "+
			strconv.Itoa(bytesPerItem)+" bytes beyond the first "+strconv.Itoa(itemAllowance)+")", nil)
	}
	return nil
}

// checkJSONShape rejects JSON nested deeper than maxDepth or padded with
// values, before the decoder sees it. data has its comments blanked out.
func checkJSONShape(data []byte) error {
	s := newShape(data)
	inStr := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			if err := s.open(i); err != nil {
				return err
			}
		case ']', '}':
			s.depth--
		case ',':
			if err := s.item(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkYAMLShape rejects YAML padded with nodes before the decoder sees
// it; the decoder bounds nesting itself, and fromYAML bounds alias
// expansion. Every node but the root follows a '-', ':' (a key and its
// value), ',' or opening bracket, so counting those bounds the nodes from
// above.
func checkYAMLShape(data []byte) error {
	s := newShape(data)
	for i, c := range data {
		n := 0
		switch c {
		case '-', ',', '[', '{':
			n = 1
		case ':':
			n = 2
		}
		for range n {
			if err := s.item(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkXMLShape rejects XML whose elements nest deeper than maxDepth or
// that is padded with elements or attributes, before the decoder sees it.
// It counts start tags, end tags, empty elements and attributes, skipping
// comments, CDATA, processing instructions, declarations and quoted
// attribute values; anything it cannot make sense of is left to the
// decoder, which reports it.
func checkXMLShape(data []byte) error {
	s := newShape(data)
	for i := 0; i < len(data); i++ {
		if data[i] != '<' {
			continue
		}
		start := i
		switch {
		case hasPrefixAt(data, i, "<!--"):
			i = skipPast(data, i+4, "-->")
		case hasPrefixAt(data, i, "<![CDATA["):
			i = skipPast(data, i+9, "]]>")
		case hasPrefixAt(data, i, "<?"):
			i = skipPast(data, i+2, "?>")
		case hasPrefixAt(data, i, "<!"):
			i = skipDecl(data, i+2)
		case hasPrefixAt(data, i, "</"):
			s.depth--
			i, _ = skipTag(data, i+2)
		default:
			end, attrs := skipTag(data, i+1)
			for range attrs {
				if err := s.item(start); err != nil {
					return err
				}
			}
			i = end
			if end < len(data) && data[end-1] == '/' {
				if err := s.item(start); err != nil { // <a/> opens and closes
					return err
				}
				continue
			}
			if err := s.open(start); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasPrefixAt(data []byte, i int, p string) bool {
	return len(data)-i >= len(p) && string(data[i:i+len(p)]) == p
}

// skipPast returns the offset of the last byte of the first end at or
// after i, or len(data).
func skipPast(data []byte, i int, end string) int {
	for ; i < len(data); i++ {
		if hasPrefixAt(data, i, end) {
			return i + len(end) - 1
		}
	}
	return len(data)
}

// skipTag returns the offset of the '>' closing a tag whose name starts at
// i, or len(data), skipping quoted attribute values and counting them.
func skipTag(data []byte, i int) (end, attrs int) {
	var quote byte
	for ; i < len(data); i++ {
		c := data[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
			attrs++
		case c == '>':
			return i, attrs
		}
	}
	return len(data), attrs
}

// skipDecl skips a <!DOCTYPE ...> or similar declaration, which may hold a
// bracketed internal subset.
func skipDecl(data []byte, i int) int {
	nest := 0
	var quote byte
	for ; i < len(data); i++ {
		c := data[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[' || c == '<':
			nest++
		case c == ']':
			nest--
		case c == '>':
			if nest <= 0 {
				return i
			}
			nest--
		}
	}
	return len(data)
}
