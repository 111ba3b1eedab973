package fcapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// decodeBody parses body, one JSON object, into v (a pointer to a struct)
// as strictly as Firecracker's serde types do: keys match exactly (Go's
// decoder alone would match them case-insensitively), unknown and
// repeated keys are errors, integers must fit their field, and a field is
// required unless it is a pointer, slice or map. Required fields may not
// be null.
func decodeBody(body []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("decodeBody needs a pointer to a struct, got %T", v)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	c := shapeChecker{dec: dec}
	if err := c.value(t.Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing characters after the JSON value")
	}
	// The shape is known good, so this cannot fail on the input's account.
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("cannot decode: %w", err)
	}
	return nil
}

// shapeChecker walks a JSON document token by token against a Go type.
type shapeChecker struct {
	dec *json.Decoder
}

// token reads the next token, turning decoder errors into one message.
func (c *shapeChecker) token() (json.Token, error) {
	tok, err := c.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return nil, fmt.Errorf("%s at byte %d", se.Error(), se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errors.New("unexpected end of the JSON input")
	}
	return nil, err
}

// value checks the next JSON value against t; path names it in errors.
func (c *shapeChecker) value(t reflect.Type, path string) error {
	tok, err := c.token()
	if err != nil {
		return err
	}
	return c.valueFrom(tok, t, path)
}

func (c *shapeChecker) valueFrom(tok json.Token, t reflect.Type, path string) error {
	if t == reflect.TypeFor[json.RawMessage]() {
		return c.skip(tok)
	}
	if tok == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			return nil
		}
		return typeError(tok, t, path)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if d, ok := tok.(json.Delim); ok && d == '{' {
			return c.object(t, path)
		}
	case reflect.Slice:
		if d, ok := tok.(json.Delim); ok && d == '[' {
			return c.array(t.Elem(), path)
		}
	case reflect.Map:
		if d, ok := tok.(json.Delim); ok && d == '{' && t.Key().Kind() == reflect.String {
			return c.mapValues(t.Elem(), path)
		}
	case reflect.Interface:
		return c.skip(tok)
	case reflect.Bool:
		if _, ok := tok.(bool); ok {
			return nil
		}
	case reflect.String:
		if _, ok := tok.(string); ok {
			return nil
		}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		if n, ok := tok.(json.Number); ok {
			if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
				return fmt.Errorf("invalid value %s%s, expected %s", n, fieldSuffix(path), expectation(t))
			}
			return nil
		}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		if n, ok := tok.(json.Number); ok {
			if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
				return fmt.Errorf("invalid value %s%s, expected %s", n, fieldSuffix(path), expectation(t))
			}
			return nil
		}
	}
	return typeError(tok, t, path)
}

// object checks the members of an object whose '{' was read.
func (c *shapeChecker) object(t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := make(map[string]bool, len(fields))
	for c.dec.More() {
		tok, err := c.token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key expected%s", fieldSuffix(path))
		}
		f, known := fields.byName(key)
		if !known {
			return fmt.Errorf("unknown field `%s`%s, expected %s", key, inSuffix(path), fields.names())
		}
		if seen[key] {
			return fmt.Errorf("duplicate field `%s`%s", key, inSuffix(path))
		}
		seen[key] = true
		if err := c.value(f.typ, joinPath(path, key)); err != nil {
			return err
		}
	}
	if _, err := c.token(); err != nil { // the closing '}'
		return err
	}
	for _, f := range fields {
		if f.required() && !seen[f.name] {
			return fmt.Errorf("missing field `%s`%s", f.name, inSuffix(path))
		}
	}
	return nil
}

// array checks the elements of an array whose '[' was read.
func (c *shapeChecker) array(elem reflect.Type, path string) error {
	for i := 0; c.dec.More(); i++ {
		if err := c.value(elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err := c.token() // the closing ']'
	return err
}

// mapValues checks the values of an object decoded into a map.
func (c *shapeChecker) mapValues(elem reflect.Type, path string) error {
	for c.dec.More() {
		tok, err := c.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if err := c.value(elem, joinPath(path, key)); err != nil {
			return err
		}
	}
	_, err := c.token()
	return err
}

// skip consumes the rest of a value whose first token is tok. It counts
// depth instead of recursing, so deep nesting cannot exhaust the stack.
func (c *shapeChecker) skip(tok json.Token) error {
	depth := 0
	for {
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
		var err error
		if tok, err = c.token(); err != nil {
			return err
		}
	}
}

// jsonField is one struct field as JSON sees it.
type jsonField struct {
	name string
	typ  reflect.Type
}

// required reports whether the field must be present and not null.
func (f jsonField) required() bool {
	switch f.typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return false
	}
	return true
}

type fieldList []jsonField

// jsonFields lists t's exported fields by their json tag names.
func jsonFields(t reflect.Type) fieldList {
	var out fieldList
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, jsonField{name: name, typ: sf.Type})
	}
	return out
}

func (l fieldList) byName(name string) (jsonField, bool) {
	for _, f := range l {
		if f.name == name {
			return f, true
		}
	}
	return jsonField{}, false
}

// names lists the fields for an "expected ..." message.
func (l fieldList) names() string {
	if len(l) == 0 {
		return "no fields"
	}
	quoted := make([]string, len(l))
	for i, f := range l {
		quoted[i] = "`" + f.name + "`"
	}
	return "one of " + strings.Join(quoted, ", ")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldSuffix names the field a value belongs to, if any.
func fieldSuffix(path string) string {
	if path == "" {
		return ""
	}
	return " for field `" + path + "`"
}

// inSuffix names the object a key belongs to, if it is not the top one.
func inSuffix(path string) string {
	if path == "" {
		return ""
	}
	return " in `" + path + "`"
}

func typeError(tok json.Token, t reflect.Type, path string) error {
	return fmt.Errorf("invalid type: %s%s, expected %s", tokenKind(tok), fieldSuffix(path), expectation(t))
}

// tokenKind names what a JSON value starting with tok is.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number " + string(v)
	case string:
		return "string"
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	}
	return "value"
}

// expectation describes the JSON a Go type accepts.
func expectation(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		return "an array"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return fmt.Sprintf("an integer from 0 to %d", uint64(1)<<t.Bits()-1)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return fmt.Sprintf("an integer from %d to %d", -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1)-1)
	}
	return "a value"
}

// unknownVariant reports an enum string outside its allowed values.
func unknownVariant(got string, want ...string) error {
	quoted := make([]string, len(want))
	for i, w := range want {
		quoted[i] = "`" + w + "`"
	}
	return fmt.Errorf("unknown variant `%s`, expected one of %s", sanitize(got), strings.Join(quoted, ", "))
}
