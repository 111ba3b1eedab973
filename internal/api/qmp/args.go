package qmp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// argKind is the QAPI type of a command parameter.
type argKind uint8

const (
	argString argKind = iota
	argInt
	argBool
	argEnumList // an array of strings from param.enum
	argEnum     // a string from param.enum
	argRaw      // any JSON value, checked by the command
)

func (k argKind) String() string {
	switch k {
	case argString:
		return "string"
	case argInt:
		return "integer"
	case argBool:
		return "boolean"
	case argEnum:
		return "string"
	case argRaw:
		return "value"
	}
	return "array"
}

// param declares one command parameter.
type param struct {
	name     string
	kind     argKind
	optional bool
	enum     []string // allowed values for argEnumList
}

// args holds a command's arguments after binding: only declared
// parameters, each of its declared type.
type args struct {
	strs  map[string]string
	ints  map[string]int64
	bools map[string]bool
	lists map[string][]string
	raws  map[string]json.RawMessage
}

// str returns a string argument and whether it was given.
func (a args) str(name string) (string, bool) { v, ok := a.strs[name]; return v, ok }

// integer returns an integer argument and whether it was given.
func (a args) integer(name string) (int64, bool) { v, ok := a.ints[name]; return v, ok }

// raw returns an argRaw argument and whether it was given.
func (a args) raw(name string) (json.RawMessage, bool) { v, ok := a.raws[name]; return v, ok }

// list returns an enum-list argument and whether it was given.
func (a args) list(name string) ([]string, bool) { v, ok := a.lists[name]; return v, ok }

// bindArgs checks members against params with QEMU's rules and messages:
// declared parameters in order (missing, then wrong type or value), then
// the first member nobody declared.
func bindArgs(params []param, members []member) (args, *Error) {
	a := args{
		strs: map[string]string{}, ints: map[string]int64{},
		bools: map[string]bool{}, lists: map[string][]string{},
		raws: map[string]json.RawMessage{},
	}
	given := make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		given[m.name] = m.value
	}
	for _, p := range params {
		raw, ok := given[p.name]
		if !ok {
			if !p.optional {
				return a, genericf("Parameter '%s' is missing", p.name)
			}
			continue
		}
		if e := a.bind(p, raw); e != nil {
			return a, e
		}
	}
	for _, m := range members {
		if !declared(params, m.name) {
			return a, genericf("Parameter '%s' is unexpected", m.name)
		}
	}
	return a, nil
}

func declared(params []param, name string) bool {
	for _, p := range params {
		if p.name == name {
			return true
		}
	}
	return false
}

func wrongType(name string, k argKind) *Error {
	return genericf("Invalid parameter type for '%s', expected: %s", name, k)
}

// bind converts one present argument.
func (a args) bind(p param, raw json.RawMessage) *Error {
	switch p.kind {
	case argString, argEnum:
		s, ok := jsonString(raw)
		if !ok {
			return wrongType(p.name, p.kind)
		}
		if p.kind == argEnum && !contains(p.enum, s) {
			return genericf("Parameter '%s' does not accept value '%s'", p.name, s)
		}
		a.strs[p.name] = s
	case argRaw:
		a.raws[p.name] = raw
	case argInt:
		n, ok := jsonInt(raw)
		if !ok {
			return wrongType(p.name, p.kind)
		}
		a.ints[p.name] = n
	case argBool:
		switch string(raw) {
		case "true":
			a.bools[p.name] = true
		case "false":
			a.bools[p.name] = false
		default:
			return wrongType(p.name, p.kind)
		}
	case argEnumList:
		vals, e := stringList(raw, p.name)
		if e != nil {
			return e
		}
		for i, s := range vals {
			if !contains(p.enum, s) {
				return genericf("Parameter '%s[%d]' does not accept value '%s'", p.name, i, s)
			}
		}
		a.lists[p.name] = vals
	}
	return nil
}

// stringList decodes a JSON array of strings; name is the parameter's
// path for error messages.
func stringList(raw json.RawMessage, name string) ([]string, *Error) {
	var elems []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		return nil, wrongType(name, argEnumList)
	}
	out := make([]string, 0, len(elems))
	for i, e := range elems {
		s, ok := jsonString(e)
		if !ok {
			return nil, wrongType(fmt.Sprintf("%s[%d]", name, i), argString)
		}
		out = append(out, s)
	}
	return out, nil
}

// jsonString decodes a JSON string value.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonInt decodes a JSON number written as an integer that fits in 64
// bits: 1.0 and 1e3 are numbers but not integers, as in QEMU.
func jsonInt(raw json.RawMessage) (int64, bool) {
	if bytes.ContainsAny(raw, ".eE") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
