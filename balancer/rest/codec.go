package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
)

// Codec encodes request values into bodies of one media type and decodes
// response bodies of that type into values. JSON (the default), Protobuf
// and Form are provided; any other format (XML, CBOR, ...) is a Codec of
// the caller's. A Codec must be safe for concurrent use.
type Codec interface {
	// ContentType is the media type the codec writes, sent as the
	// request's Content-Type ("application/json").
	ContentType() string
	// Handles reports whether the codec reads bodies of mediaType (a
	// response's Content-Type, lower case, without parameters).
	Handles(mediaType string) bool
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a non-nil pointer.
	Unmarshal(data []byte, v any) error
}

// JSON is the default codec: encoding/json, application/json (and any
// +json media type) for responses.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) ContentType() string { return "application/json" }

func (jsonCodec) Handles(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Protobuf encodes protocol buffer messages (google.golang.org/protobuf) in
// their binary form, as application/x-protobuf; it reads that and
// application/protobuf, application/vnd.google.protobuf and
// application/octet-stream. Request values must be proto.Message; a
// response type is a message pointer (*pb.User), allocated when nil.
var Protobuf Codec = protoCodec{}

type protoCodec struct{}

func (protoCodec) ContentType() string { return "application/x-protobuf" }

func (protoCodec) Handles(mt string) bool {
	switch mt {
	case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf", "application/octet-stream":
		return true
	}
	return false
}

func (protoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("protobuf codec: %T is not a proto.Message", v)
	}
	return proto.Marshal(m)
}

func (protoCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		return proto.Unmarshal(data, m)
	}
	// A pointer to a message pointer (the address of a Resp = *pb.T):
	// allocate the message if it is nil.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Pointer {
		if rv.Elem().IsNil() {
			rv.Elem().Set(reflect.New(rv.Elem().Type().Elem()))
		}
		if m, ok := rv.Elem().Interface().(proto.Message); ok {
			return proto.Unmarshal(data, m)
		}
	}
	return fmt.Errorf("protobuf codec: cannot decode into %T (want a proto.Message pointer)", v)
}

// Form encodes HTML form bodies, application/x-www-form-urlencoded, from
// url.Values, map[string]string, map[string][]string, or a struct (or
// pointer to one) whose exported fields are strings, booleans, numbers or
// slices of them, named by a `form:"name"` tag (the field's name without
// one; `form:"-"` skips it; `form:"name,omitempty"` leaves a zero value
// out). It decodes such a body into a *url.Values or a pointer to such a
// struct. A value it cannot encode or decode is an error naming the field.
var Form Codec = formCodec{}

type formCodec struct{}

func (formCodec) ContentType() string    { return "application/x-www-form-urlencoded" }
func (formCodec) Handles(mt string) bool { return mt == "application/x-www-form-urlencoded" }

func (formCodec) Marshal(v any) ([]byte, error) {
	vals, err := formValues(v)
	if err != nil {
		return nil, err
	}
	return []byte(vals.Encode()), nil
}

func (formCodec) Unmarshal(data []byte, v any) error {
	vals, err := url.ParseQuery(string(data))
	if err != nil {
		return fmt.Errorf("form codec: %w", err)
	}
	if p, ok := v.(*url.Values); ok {
		*p = vals
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("form codec: cannot decode into %T (want *url.Values or a struct pointer)", v)
	}
	st := rv.Elem()
	for i := range st.NumField() {
		f := st.Type().Field(i)
		name, _, ok := formField(f)
		if !ok {
			continue
		}
		vs, present := vals[name]
		if !present {
			continue
		}
		if err := setForm(st.Field(i), vs); err != nil {
			return fmt.Errorf("form codec: field %s (%q): %w", f.Name, name, err)
		}
	}
	return nil
}

// formValues turns a value to encode into form values.
func formValues(v any) (url.Values, error) {
	switch x := v.(type) {
	case url.Values:
		return x, nil
	case map[string][]string:
		return url.Values(x), nil
	case map[string]string:
		vals := make(url.Values, len(x))
		for k, s := range x {
			vals.Set(k, s)
		}
		return vals, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("form codec: cannot encode %T (want url.Values, a string map or a struct)", v)
	}
	vals := make(url.Values)
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		name, omitEmpty, ok := formField(f)
		if !ok {
			continue
		}
		fv := rv.Field(i)
		if omitEmpty && fv.IsZero() {
			continue
		}
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() != reflect.Uint8 {
			for j := range fv.Len() {
				s, err := formString(fv.Index(j))
				if err != nil {
					return nil, fmt.Errorf("form codec: field %s (%q): %w", f.Name, name, err)
				}
				vals.Add(name, s)
			}
			continue
		}
		s, err := formString(fv)
		if err != nil {
			return nil, fmt.Errorf("form codec: field %s (%q): %w", f.Name, name, err)
		}
		vals.Set(name, s)
	}
	return vals, nil
}

// formField returns the form name of a struct field, whether a zero value
// is left out, and false for fields that are not encoded.
func formField(f reflect.StructField) (string, bool, bool) {
	if !f.IsExported() {
		return "", false, false
	}
	tag := f.Tag.Get("form")
	if tag == "-" {
		return "", false, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, opts == "omitempty", true
}

func formString(v reflect.Value) (string, error) {
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits()), nil
	}
	return "", errors.New("unsupported type " + v.Type().String())
}

func setForm(dst reflect.Value, vs []string) error {
	if dst.Kind() == reflect.Slice && dst.Type().Elem().Kind() != reflect.Uint8 {
		out := reflect.MakeSlice(dst.Type(), len(vs), len(vs))
		for i, s := range vs {
			if err := setFormOne(out.Index(i), s); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	}
	return setFormOne(dst, vs[0])
}

func setFormOne(dst reflect.Value, s string) error {
	switch dst.Kind() {
	case reflect.String:
		dst.SetString(s)
		return nil
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		dst.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, dst.Type().Bits())
		if err != nil {
			return err
		}
		dst.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, dst.Type().Bits())
		if err != nil {
			return err
		}
		dst.SetUint(n)
		return nil
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, dst.Type().Bits())
		if err != nil {
			return err
		}
		dst.SetFloat(n)
		return nil
	}
	return errors.New("unsupported type " + dst.Type().String())
}

// mediaType returns the media type of a Content-Type value, lower case
// and without parameters ("" when there is none or it does not parse).
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	if strings.IndexByte(mt, '/') <= 0 {
		return ""
	}
	for i := 0; i < len(mt); i++ {
		if c := mt[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(mt) // allocates only here
		}
	}
	return mt
}

// accept is the Accept header that lists codecs, the first preferred.
func accept(codecs []Codec) string {
	if len(codecs) == 1 {
		return codecs[0].ContentType()
	}
	var b strings.Builder
	for i, c := range codecs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.ContentType())
		if i > 0 {
			q := 10 - i
			if q < 1 {
				q = 1
			}
			b.WriteString(";q=0." + strconv.Itoa(q))
		}
	}
	return b.String()
}
