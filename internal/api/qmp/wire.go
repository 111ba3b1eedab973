package qmp

import (
	"bytes"
	"encoding/json"
)

// Messages the server sends. Field order follows QEMU's output.
type (
	greeting struct {
		QMP greetingBody `json:"QMP"`
	}
	greetingBody struct {
		Version      VersionInfo `json:"version"`
		Capabilities []string    `json:"capabilities"`
	}
	successReply struct {
		Return any             `json:"return"`
		ID     json.RawMessage `json:"id,omitempty"`
	}
	errorReply struct {
		ID    json.RawMessage `json:"id,omitempty"`
		Error *Error          `json:"error"`
	}
	eventMessage struct {
		Timestamp timestamp `json:"timestamp"`
		Event     string    `json:"event"`
		Data      any       `json:"data,omitempty"`
	}
	timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	}
)

// empty is the {} that commands without a result return.
type empty struct{}

// encode marshals v as one QMP message: JSON spaced the way QEMU spaces
// it, then CRLF. It never fails: an unencodable value (a bug) becomes a
// GenericError reply carrying the given id.
func encode(v any, id json.RawMessage) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		_ = enc.Encode(errorReply{ID: id, Error: genericf("cannot encode the reply: %v", err)})
	}
	out := spaceJSON(bytes.TrimRight(b.Bytes(), "\n"))
	return append(out, '\r', '\n')
}

func encodeReturn(ret any, id json.RawMessage) []byte {
	return encode(successReply{Return: ret, ID: id}, id)
}

func encodeError(e *Error, id json.RawMessage) []byte {
	return encode(errorReply{ID: id, Error: e}, id)
}

func encodeEvent(ev Event) []byte {
	us := ev.Time.UnixMicro()
	m := eventMessage{
		Timestamp: timestamp{Seconds: us / 1e6, Microseconds: us % 1e6},
		Event:     ev.Name,
		Data:      ev.Data,
	}
	return encode(m, nil)
}

// spaceJSON puts a space after every ':' and ',' outside strings of a
// compact JSON text: {"a": 1, "b": [2, 3]}.
func spaceJSON(compact []byte) []byte {
	out := make([]byte, 0, len(compact)+len(compact)/8+2)
	inString, escape := false, false
	for _, c := range compact {
		out = append(out, c)
		switch {
		case inString && escape:
			escape = false
		case inString && c == '\\':
			escape = true
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}
