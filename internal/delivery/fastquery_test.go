package delivery

import (
	"maps"
	"testing"
)

func TestParseFieldQuery(t *testing.T) {
	for q, want := range map[string]bool{
		"{customer: .customer, kind: .kind}": true,
		"{a:.a}":                             true,
		"{ a : .x.y.z , b: .b }":             true,
		"{a: .a | ascii_downcase}":           false,
		"{a: .a, a: .b}":                     false,
		`{"a": .a}`:                          false,
		"{a: .[0]}":                          false,
		".a":                                 false,
	} {
		if got := parseFieldQuery(q) != nil; got != want {
			t.Errorf("%q recognised %v, want %v", q, got, want)
		}
	}
}

// FuzzFieldQuery checks that the scan gives what gojq gives whenever it
// answers at all.
func FuzzFieldQuery(f *testing.F) {
	for _, seed := range []string{
		`{"a":"x","b":{"c":1},"n":true}`, `{"a":"x","b":{"c":"y"},"n":null}`, `{"a":"x"}`, `{"a":"x","a":"y","b":{"c":2},"n":false}`,
		`{"a":"\u0041","b":{"c":1},"n":1}`, `{"a":1.5,"b":{"c":1},"n":1}`, `[1]`, `"s"`, `{"b":[1],"a":"x","n":0}`, `{"a":"x","b":{"c":-0},"n":01}`,
		`{"a":"x","b":{"c":12345678901234567890},"n":"z"}`, `{"a" : "x" , "b" : { "c" : 3 } , "n" : "q" }  `, `{"a":"x","b":{"c":1},"n":1}{}`,
	} {
		f.Add([]byte(seed))
	}
	code, err := compileQuery("{a: .a, c: .b.c, n: .n}")
	if err != nil {
		f.Fatal(err)
	}
	pc := pipelineConfig{query: code, fields: parseFieldQuery("{a: .a, c: .b.c, n: .n}")}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, null, ok := pc.fields.extract(data)
		if !ok {
			return
		}
		slow, err := pc.queryKeys(data)
		if null != "" {
			if err == nil {
				t.Fatalf("%q: the scan found %s null, gojq gave %v", data, null, slow)
			}
			return
		}
		if err != nil || !maps.Equal(keys, slow) {
			t.Fatalf("%q: the scan gave %v, gojq %v (%v)", data, keys, slow, err)
		}
	})
}
