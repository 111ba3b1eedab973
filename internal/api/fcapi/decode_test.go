package fcapi

import (
	"strings"
	"testing"
)

type decodeInner struct {
	Size uint64  `json:"size"`
	Tag  *string `json:"tag"`
}

type decodeTarget struct {
	Count  uint8             `json:"count"`
	Name   string            `json:"name"`
	Flag   *bool             `json:"flag"`
	Inner  *decodeInner      `json:"inner"`
	List   []decodeInner     `json:"list"`
	Labels map[string]string `json:"labels"`
	Delta  *int16            `json:"delta"`
}

func TestDecodeBodyAccepts(t *testing.T) {
	var v decodeTarget
	body := `{"count": 7, "name": "x", "flag": null, "inner": {"size": 18446744073709551615},
		"list": [{"size": 1, "tag": "a"}], "labels": {"k": "v"}, "delta": -32768}`
	if err := decodeBody([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Count != 7 || v.Name != "x" || v.Flag != nil || v.Inner.Size != 1<<64-1 ||
		len(v.List) != 1 || *v.List[0].Tag != "a" || v.Labels["k"] != "v" || *v.Delta != -32768 {
		t.Fatalf("decoded %+v", v)
	}
}

func TestDecodeBodyRejects(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{``, "unexpected end"},
		{`   `, "unexpected end"},
		{`{"count": 1, "name": "x"`, "unexpected end"},
		{`{"count": 1, "name": "x",}`, "invalid character"},
		{`{"count": 1 "name": "x"}`, "invalid character"},
		{`[]`, "invalid type: array, expected an object"},
		{`null`, "invalid type: null, expected an object"},
		{`"x"`, "invalid type: string, expected an object"},
		{`{"count": 1, "name": "x"} {}`, "trailing characters"},
		{`{"count": 1, "name": "x"}]`, "trailing characters"},
		{`{"name": "x"}`, "missing field `count`"},
		{`{"count": null, "name": "x"}`, "invalid type: null for field `count`, expected an integer from 0 to 255"},
		{`{"count": 1, "name": "x", "bogus": 1}`, "unknown field `bogus`, expected one of `count`, `name`"},
		{`{"Count": 1, "name": "x"}`, "unknown field `Count`"},
		{`{"count": 1, "count": 2, "name": "x"}`, "duplicate field `count`"},
		{`{"count": "1", "name": "x"}`, "invalid type: string for field `count`"},
		{`{"count": 256, "name": "x"}`, "invalid value 256 for field `count`, expected an integer from 0 to 255"},
		{`{"count": -1, "name": "x"}`, "invalid value -1"},
		{`{"count": 1.5, "name": "x"}`, "invalid value 1.5"},
		{`{"count": 1e2, "name": "x"}`, "invalid value 1e2"},
		{`{"count": 1, "name": 5}`, "invalid type: number 5 for field `name`, expected a string"},
		{`{"count": 1, "name": "x", "flag": "yes"}`, "invalid type: string for field `flag`, expected a boolean"},
		{`{"count": 1, "name": "x", "inner": {}}`, "missing field `size` in `inner`"},
		{`{"count": 1, "name": "x", "inner": {"size": 1, "x": 2}}`, "unknown field `x` in `inner`"},
		{`{"count": 1, "name": "x", "inner": []}`, "invalid type: array for field `inner`, expected an object"},
		{`{"count": 1, "name": "x", "list": [{"size": "a"}]}`, "for field `list[0].size`"},
		{`{"count": 1, "name": "x", "list": {}}`, "expected an array"},
		{`{"count": 1, "name": "x", "labels": {"k": 1}}`, "for field `labels.k`, expected a string"},
		{`{"count": 1, "name": "x", "delta": 40000}`, "expected an integer from -32768 to 32767"},
		{`{"count": 1, "name": "\ud800"}` + "\x00", "trailing characters"},
	} {
		var v decodeTarget
		err := decodeBody([]byte(c.body), &v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("decodeBody(%q) = %v, want an error containing %q", c.body, err, c.want)
		}
	}
}

func TestDecodeBodySkipsRawSections(t *testing.T) {
	var cf configFile
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	body := `{"boot-source": {"kernel_image_path": "k"}, "mmds-config": ` + deep + `}`
	if err := decodeBody([]byte(body), &cf); err != nil {
		t.Fatal(err)
	}
	if len(cf.MMDSConfig) == 0 {
		t.Fatal("raw section was not kept")
	}
}

func TestDecodeBodyNeedsStructPointer(t *testing.T) {
	var n int
	if err := decodeBody([]byte(`1`), &n); err == nil {
		t.Fatal("decoding into *int succeeded")
	}
}
