package partner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
	"github.com/sluicehq/sluice/internal/xsd"
	"github.com/sluicehq/sluice/internal/xslt"
)

// xmlLimits are the parse limits of XML messages; MaxBytes is the type's.
func xmlLimits(maxBytes int64) xmltree.Limits {
	return xmltree.Limits{MaxBytes: maxBytes, MaxDepth: 100, MaxNodes: 200_000}
}

// parseXML reads an XML message safely (no DTD, no entities, bounded).
func parseXML(body []byte, maxBytes int64, stage string) (*xmltree.Node, error) {
	doc, err := xmltree.Parse(body, xmlLimits(maxBytes))
	if err != nil {
		var xe *xmltree.Error
		if errors.As(err, &xe) {
			loc := ""
			if xe.Line > 0 {
				loc = fmt.Sprintf("line %d", xe.Line)
			}
			what := "malformed or refused XML: "
			if stage != StageParse {
				what = "the transform wrote malformed XML: "
			}
			return nil, reject(stage, Problem{Location: loc, Reason: what + xe.Reason})
		}
		return nil, reject(stage, Problem{Reason: err.Error()})
	}
	return doc, nil
}

// compileXSD compiles an XSD; empty: nil. Includes and imports are
// refused: a type's schema must be whole.
func compileXSD(field, src string) (*xsd.Schema, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	s, err := xsd.Compile([]byte(src), xsd.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s is not a schema this server can use: %v", field, err)
	}
	return s, nil
}

// validateXML lists every violation of doc against s.
func validateXML(s *xsd.Schema, doc *xmltree.Node, stage string) error {
	vs := s.Validate(doc)
	if len(vs) == 0 {
		return nil
	}
	problems := make([]Problem, 0, min(len(vs), maxProblems))
	for _, v := range vs[:min(len(vs), maxProblems)] {
		loc := v.Path
		if v.Line > 0 {
			loc = fmt.Sprintf("%s (line %d)", v.Path, v.Line)
		}
		problems = append(problems, Problem{Location: loc, Reason: v.Reason})
	}
	return reject(stage, problems...)
}

func (c *compiled) compileXML() error {
	in, err := compileXSD("schema", c.def.Schema)
	if err != nil {
		return err
	}
	maxBytes := c.def.MaxBytes
	c.in = func(body []byte) (any, error) {
		doc, err := parseXML(body, maxBytes, StageParse)
		if err != nil {
			return nil, err
		}
		if in != nil {
			if err := validateXML(in, doc, StageSchema); err != nil {
				return nil, err
			}
		}
		return xmlMessage{doc: doc, raw: body}, nil
	}
	var sheet *xslt.Stylesheet
	if strings.TrimSpace(c.def.Transform) != "" {
		if sheet, err = xslt.Compile([]byte(c.def.Transform), xslt.Options{}); err != nil {
			return fmt.Errorf("transform is not a stylesheet this server can use: %v", err)
		}
	}
	target := c.def.TargetFormat
	if sheet == nil && target == FormatJSON {
		return errors.New("an XML type with a JSON target needs a transform (an XSLT that writes JSON with method=\"text\")")
	}
	c.out = func(_ context.Context, v any) (any, error) {
		m := v.(xmlMessage)
		if sheet == nil {
			return m, nil
		}
		out, err := sheet.Transform(m.doc, nil)
		if err != nil {
			return nil, reject(StageTransform, Problem{Reason: err.Error()})
		}
		if target == FormatJSON {
			v, err := parseJSON(out)
			if err != nil {
				var rej *Rejection
				if errors.As(err, &rej) {
					rej.Stage = StageTransform
					for i := range rej.Problems {
						rej.Problems[i].Reason = "the transform wrote malformed JSON: " + rej.Problems[i].Reason
					}
				}
				return nil, err
			}
			return v, nil
		}
		doc, err := parseXML(out, 64<<20, StageTransform)
		if err != nil {
			return nil, err
		}
		return xmlMessage{doc: doc, raw: out}, nil
	}
	if target == FormatJSON {
		if c.def.TargetSchema != "" && strings.HasPrefix(strings.TrimSpace(c.def.TargetSchema), "<") {
			return errors.New("target_schema: a JSON target takes a JSON Schema, not an XSD")
		}
		return c.jsonTarget()
	}
	tgt, err := compileXSD("target_schema", c.def.TargetSchema)
	if err != nil {
		return err
	}
	c.target = func(v any) error {
		if tgt == nil {
			return nil
		}
		return validateXML(tgt, v.(xmlMessage).doc, StageTargetSchema)
	}
	c.encode = func(v any) ([]byte, error) { return v.(xmlMessage).raw, nil }
	c.contentType = "application/xml"
	if c.def.PartitionKey != "" {
		ns := c.def.Namespaces
		expr, err := xpath.Compile(c.def.PartitionKey, xpath.Options{Namespaces: func(p string) (string, bool) {
			uri, ok := ns[p]
			return uri, ok
		}})
		if err != nil {
			return fmt.Errorf("partition_key: %v (bind its prefixes in namespaces)", err)
		}
		c.key = func(v any) (string, error) {
			doc := v.(xmlMessage).doc
			val, err := expr.Eval(&xpath.Context{Node: doc})
			if err != nil {
				return "", err
			}
			if ns, ok := val.(xpath.NodeSet); ok && len(ns) == 0 {
				return "", errors.New("the partition key expression selects nothing in the message")
			}
			k := xpath.String(val)
			if k == "" {
				return "", errors.New("the partition key expression gives an empty string")
			}
			return k, nil
		}
	}
	return nil
}

// xmlMessage is an XML message in the inbound path: its tree and bytes.
type xmlMessage struct {
	doc *xmltree.Node
	raw []byte
}

// MarshalJSON lets a JSON encoder fail clearly if an XML message ever
// reaches it.
func (xmlMessage) MarshalJSON() ([]byte, error) {
	return nil, errors.New("an XML message cannot be encoded as JSON")
}

var _ json.Marshaler = xmlMessage{}
