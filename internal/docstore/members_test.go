package docstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

var prepareSeeds = []string{
	`{"id":"a","deviceId":"d1","x":1}`,
	`{ "id" : "a" , "deviceId" : 7, "nested": { "a" : [1, 2, {"b": "c d"}] } }`,
	`{"id":"a\u0041","deviceId":"d\"1","_etag":"x","_ts":1,"_lsn":2,"v":null}`,
	`{"id":"a","deviceId":"d","deviceId":"e"}`,
	`{"id":"a","de\u0076iceId":"d"}`,
	`{"id":"a","deviceId":true,"t":false}`,
	`{"id":"","deviceId":"d"}`,
	`{"id":"a/b","deviceId":"d"}`,
	`{"id":"a","deviceId":""}`,
	`{"id":"a","deviceId":{"x":1}}`,
	`{"id":"a","deviceId":-1.5e3}`,
	`{"id":1,"deviceId":"d"}`,
	`[1,2]`,
	`{"id":"a","deviceId":"d"} {}`,
	"{\"id\":\"a\",\n\t\"deviceId\":\"d\",\"s\":\"tab\\tin\"}",
	`{"id":"a","deviceId":"d","n":[01]}`,
	`{"id":"a","deviceId":"d","n":1.}`,
	`{"id":"a","deviceId":"d","n":-0.5E+3,"e":"\u00e9\ud83d"}`,
	`{"id":"a","deviceId":"d","x":[1,]}`,
	`{"id":"a","deviceId":"d","x":{"a":1,}}`,
	`{"id":"a","deviceId":"d","x":tru}`,
	`{"id":"a","deviceId":"d","x":"\x"}`,
	`{"id":"a","nested":{ "a" : "p" , "a":"q"}}`,
	`{"id":"a","deviceId":"d","x":[{"k":1,"k":2}]}`,
	`{"id":"a","deviceId":"d","x":{"k":1,"\u006b":2}}`,
	`{"id":"a","deviceId":"d","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
}

func TestPrepareRendersEveryField(t *testing.T) {
	c := Container{Name: "c", PartitionKeyPath: "/deviceId"}
	p, err := Prepare(c, []byte(`{ "deviceId" : "d1", "id" : "x", "_etag": "old", "n": [1, 2], "s": "a b" }`), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got := string(p.Render(`"7"`, time.Unix(100, 0), 7))
	want := `{"id":"x","deviceId":"d1","n":[1,2],"s":"a b","_etag":"\"7\"","_ts":100,"_lsn":7}`
	if got != want {
		t.Fatalf("rendered\n%s\nwant\n%s", got, want)
	}
}

// A nested partition key path once merged the nested object's fields into
// the document's own on the decoding path.
func TestPrepareNestedKeyKeepsFields(t *testing.T) {
	c := Container{Name: "c", PartitionKeyPath: "/site/id"}
	doc := []byte(`{"id":"x","s\u0069te":{"id":"s2","zone":3}}`) // an escaped name: decoded
	p, err := Prepare(c, doc, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got := string(p.Render(`"1"`, time.Unix(1, 0), 1))
	want := `{"id":"x","site":{"id":"s2","zone":3},"_etag":"\"1\"","_ts":1,"_lsn":1}`
	if p.PartitionKey != "s2" || got != want {
		t.Fatalf("pk %q, rendered\n%s\nwant pk s2 and\n%s", p.PartitionKey, got, want)
	}
}

// FuzzPrepare checks that the scanning path agrees with the decoding path
// on every document it takes: the same id, partition key and fields.
func FuzzPrepare(f *testing.F) {
	for _, s := range prepareSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, doc []byte, nested bool) {
		c := Container{Name: "c", PartitionKeyPath: "/deviceId"}
		if nested {
			c.PartitionKeyPath = "/nested/a"
		}
		path, _ := ParsePath(c.PartitionKeyPath)
		fast, ok := prepareFast(path, doc)
		slow, err := prepareDecoded(c, doc)
		if !ok {
			return
		}
		if serr := CheckShape(doc, "document", MaxDepth); serr != nil {
			// Prepare refuses what the scanning path took: so must decoding.
			if err == nil {
				t.Fatalf("%q: the decoding path took a document whose shape is refused: %v", doc, serr)
			}
			return
		}
		if !json.Valid(doc) {
			t.Fatalf("the scanning path took %q, which is not valid JSON", doc)
		}
		if err != nil {
			t.Fatalf("the scanning path took %q, the decoding path refused it: %v", doc, err)
		}
		if fast.ID != slow.ID || fast.PartitionKey != slow.PartitionKey {
			t.Fatalf("%q: scanning gave id %q pk %q, decoding id %q pk %q", doc, fast.ID, fast.PartitionKey, slow.ID, slow.PartitionKey)
		}
		at := time.Unix(5, 0)
		var a, b map[string]any
		if err := json.Unmarshal(fast.Render(`"1"`, at, 1), &a); err != nil {
			t.Fatalf("%q: the scanning path rendered bad JSON: %v", doc, err)
		}
		if err := json.Unmarshal(slow.Render(`"1"`, at, 1), &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%q: scanning rendered %v, decoding %v", doc, a, b)
		}
	})
}
