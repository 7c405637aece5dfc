package partner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// xmlLimits are the parse limits of XML messages; MaxBytes is the type's.
func xmlLimits(maxBytes int64) xmltree.Limits {
	return xmltree.Limits{MaxBytes: maxBytes, MaxDepth: 100, MaxNodes: 200_000}
}

// parseXML reads an XML message safely (no DTD, no entities, bounded).
func parseXML(body []byte, maxBytes int64) (*xmltree.Node, error) {
	doc, err := xmltree.Parse(body, xmlLimits(maxBytes))
	if err != nil {
		var xe *xmltree.Error
		if errors.As(err, &xe) {
			loc := ""
			if xe.Line > 0 {
				loc = fmt.Sprintf("line %d", xe.Line)
			}
			return nil, reject(StageParse, Problem{Location: loc, Reason: "malformed or refused XML: " + xe.Reason})
		}
		return nil, reject(StageParse, Problem{Reason: err.Error()})
	}
	return doc, nil
}

func (c *compiled) compileXML() error {
	for _, f := range []struct{ name, v string }{{"schema", c.def.Schema}, {"transform", c.def.Transform}, {"target_schema", c.def.TargetSchema}, {"partition_key", c.def.PartitionKey}} {
		if strings.TrimSpace(f.v) != "" {
			return fmt.Errorf("%s: XSD, XSLT and XPath for XML message types are not available in this build", f.name)
		}
	}
	max := c.def.MaxBytes
	c.in = func(body []byte) (any, error) {
		if _, err := parseXML(body, max); err != nil {
			return nil, err
		}
		return body, nil
	}
	c.out = func(_ context.Context, v any) (any, error) { return v, nil }
	c.target = func(any) error { return nil }
	c.encode = func(v any) ([]byte, error) { return v.([]byte), nil }
	c.contentType = "application/xml"
	return nil
}
