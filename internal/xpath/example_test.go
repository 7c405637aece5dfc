package xpath_test

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
)

const order = `<po:Order xmlns:po="urn:example:po">
  <po:Line qty="2" price="9.50"/>
  <po:Line qty="1" price="120"/>
  <po:Line qty="10" price="0.25" status="cancelled"/>
</po:Order>`

// Compile once, with the prefixes the expression uses, and evaluate on
// any number of documents, from any number of goroutines.
func ExampleCompile() {
	doc, err := xmltree.Parse([]byte(order), xmltree.Limits{})
	if err != nil {
		panic(err)
	}
	ns := map[string]string{"po": "urn:example:po"}
	opts := xpath.Options{Namespaces: func(p string) (string, bool) { uri, ok := ns[p]; return uri, ok }}
	open := xpath.MustCompile("count(//po:Line[not(@status = 'cancelled')])", opts)
	dearest := xpath.MustCompile("//po:Line[@price > 100]/@qty", opts)

	v, _ := open.Eval(&xpath.Context{Node: doc})
	fmt.Println(v)
	v, _ = dearest.Eval(&xpath.Context{Node: doc})
	fmt.Println(xpath.String(v))
	_, err = xpath.Compile("//po:Line[", opts)
	fmt.Println(err)
	// Output:
	// 2
	// 1
	// xpath: expected an expression, found the end of the expression at offset 10 in "//po:Line["
}

// A template rule's pattern: each alternative has its own priority.
func ExampleCompilePattern() {
	doc, _ := xmltree.Parse([]byte(order), xmltree.Limits{})
	opts := xpath.Options{Namespaces: func(p string) (string, bool) { return "urn:example:po", p == "po" }}
	p, _ := xpath.CompilePattern("po:Line[@status] | po:*", opts)
	for _, alt := range p.Alternatives() {
		fmt.Println(alt, alt.DefaultPriority())
	}
	lines := xpath.MustCompile("//po:Line", opts)
	v, _ := lines.Eval(&xpath.Context{Node: doc})
	for _, n := range v.(xpath.NodeSet) {
		ok, _ := p.Alternatives()[0].Match(n, nil)
		fmt.Println(n.Path(), ok)
	}
	// Output:
	// po:Line[@status] 0.5
	// po:* -0.25
	// /po:Order/po:Line[1] false
	// /po:Order/po:Line[2] false
	// /po:Order/po:Line[3] true
}
