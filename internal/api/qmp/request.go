package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// member is one name/value pair of a JSON object, in input order.
type member struct {
	name  string
	value json.RawMessage
}

// request is one validated QMP command.
type request struct {
	execute string
	oob     bool            // sent as exec-oob
	args    []member        // the arguments object's members
	id      json.RawMessage // nil when the client sent none
}

// parseRequest checks one framed message as QEMU does and returns the
// command. The id is returned (compacted) whenever the message is an
// object that has one, so that errors can echo it.
func parseRequest(msg []byte, oobEnabled bool) (request, *Error) {
	var req request
	if perr := checkJSON(msg); perr != nil {
		return req, perr
	}
	if msg[0] != '{' {
		return req, genericf("QMP input must be a JSON object")
	}
	members, err := objectMembers(msg)
	if err != nil {
		return req, parseError(err.Error())
	}
	for _, m := range members {
		if m.name == "id" {
			var b bytes.Buffer
			if json.Compact(&b, m.value) == nil {
				req.id = b.Bytes()
			}
		}
	}
	execKey := ""
	for _, m := range members {
		switch {
		case m.name == "execute" || m.name == "exec-oob" && oobEnabled:
			var name string
			if m.value[0] != '"' || json.Unmarshal(m.value, &name) != nil {
				return req, genericf("QMP input member '%s' must be a string", m.name)
			}
			if execKey != "" {
				return req, genericf("QMP input member '%s' clashes with '%s'", m.name, execKey)
			}
			execKey, req.execute, req.oob = m.name, name, m.name == "exec-oob"
		case m.name == "arguments":
			if m.value[0] != '{' {
				return req, genericf("QMP input member 'arguments' must be an object")
			}
			args, err := objectMembers(m.value)
			if err != nil {
				return req, parseError(err.Error())
			}
			req.args = args
		case m.name == "id":
		default:
			return req, genericf("QMP input member '%s' is unexpected", m.name)
		}
	}
	if execKey == "" {
		return req, genericf("QMP input lacks member 'execute'")
	}
	return req, nil
}

// objectMembers splits a valid JSON object into its members.
func objectMembers(obj []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, err
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("key is not a string in object")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{name: name, value: v})
	}
	return out, nil
}

// level is one open object or array while checkJSON walks a text.
type level struct {
	object  bool
	wantKey bool
	keys    map[string]struct{}
}

// checkJSON reports whether msg is exactly one JSON value with no
// duplicate keys in any object, with QEMU's wording for the common faults.
func checkJSON(msg []byte) *Error {
	if isBareword(msg) {
		switch string(msg) {
		case "true", "false", "null":
			return nil
		}
		return parseError("invalid keyword '" + string(msg) + "'")
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	var stack []level
	seen := false // a complete top-level value was read
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 || !seen {
				return parseError("premature end of input")
			}
			return nil
		}
		if err != nil {
			return parseError(syntaxDetail(err))
		}
		if seen && len(stack) == 0 {
			return parseError("more than one value in a message")
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone(stack)
				seen = len(stack) == 0
				continue
			}
			key, _ := tok.(string)
			top := &stack[n-1]
			if _, dup := top.keys[key]; dup {
				return parseError("duplicate key")
			}
			top.keys[key] = struct{}{}
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{object: true, wantKey: true, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, level{})
		case json.Delim('}'), json.Delim(']'):
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			valueDone(stack)
		default:
			valueDone(stack)
		}
		seen = seen || len(stack) == 0
	}
}

// valueDone records that the innermost open object got a member's value.
func valueDone(stack []level) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].wantKey = true
	}
}

// isBareword reports whether msg is a run of letters: a keyword or a
// misspelt one.
func isBareword(msg []byte) bool {
	if len(msg) == 0 {
		return false
	}
	for _, c := range msg {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// syntaxDetail is the decoder's description of a syntax error.
func syntaxDetail(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "premature end of input"
	}
	return err.Error()
}
