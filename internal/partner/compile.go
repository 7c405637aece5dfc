package partner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/itchyny/gojq"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Problem is one thing wrong with a message: where (a JSON Pointer or an
// XPath) and why.
type Problem struct {
	Location string `json:"location"`
	Reason   string `json:"reason"`
}

// Stages of the inbound path, as rejections name them.
const (
	StageParse        = "parse"
	StageSchema       = "schema"
	StageTransform    = "transform"
	StageTargetSchema = "target_schema"
	StagePartitionKey = "partition_key"
)

// Rejection is a message refused on the inbound path: the stage that
// refused it and every problem found there.
type Rejection struct {
	Stage    string    `json:"stage"`
	Problems []Problem `json:"problems"`
}

func (r *Rejection) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v at %s", ErrRejected, r.Stage)
	for i, p := range r.Problems {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(r.Problems)-5)
			break
		}
		b.WriteString("; ")
		if p.Location != "" {
			b.WriteString(p.Location + ": ")
		}
		b.WriteString(p.Reason)
	}
	return b.String()
}

func (r *Rejection) Unwrap() error { return ErrRejected }

// Status is the HTTP status of a rejection: 400 for a message that cannot
// be read, 422 for one that is read but invalid, 500 when the type's own
// transform failed on a valid message (the type is wrong, not the sender).
func (r *Rejection) Status() int {
	switch r.Stage {
	case StageParse:
		return http.StatusBadRequest
	case StageTransform, StageTargetSchema, StagePartitionKey:
		return http.StatusUnprocessableEntity
	}
	return http.StatusUnprocessableEntity
}

func reject(stage string, problems ...Problem) *Rejection {
	return &Rejection{Stage: stage, Problems: problems}
}

// maxProblems bounds the problems reported for one message.
const maxProblems = 100

// transformTimeout bounds one transform (a jq program can loop).
const transformTimeout = 5 * time.Second

// compiled is a message type ready to take messages: its schemas and
// transform compiled once, used by many requests at once.
type compiled struct {
	def MessageType
	// in reads and checks the input; out transforms a read input; target
	// checks the transformed message; key picks the partition key.
	in     func(body []byte) (any, error)
	out    func(ctx context.Context, v any) (any, error)
	target func(v any) error
	encode func(v any) ([]byte, error)
	key    func(v any) (string, error)
	// contentType is the published message's content type.
	contentType string
}

// compile checks and compiles a message type. Every error wraps
// ErrInvalid and names the field and, where it can, the line.
func compile(t MessageType) (*compiled, error) {
	t.normalize()
	if err := t.check(); err != nil {
		return nil, err
	}
	c := &compiled{def: t}
	var err error
	switch t.Format {
	case FormatJSON:
		err = c.compileJSON()
	case FormatXML:
		err = c.compileXML()
	}
	if err != nil {
		return nil, fmt.Errorf("%w message type %q: %w", ErrInvalid, t.Name, err)
	}
	return c, nil
}

func (c *compiled) compileJSON() error {
	in, err := compileJSONSchema("schema", c.def.Schema)
	if err != nil {
		return err
	}
	c.in = func(body []byte) (any, error) {
		v, err := parseJSON(body)
		if err != nil {
			return nil, err
		}
		if in != nil {
			if rej := validateJSON(in, v, StageSchema); rej != nil {
				return nil, rej
			}
		}
		return v, nil
	}
	c.out, err = compileJQ(c.def.Transform)
	if err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	return c.jsonTarget()
}

// jsonTarget sets the target check, encoding and key of a JSON target.
func (c *compiled) jsonTarget() error {
	target, err := compileJSONSchema("target_schema", c.def.TargetSchema)
	if err != nil {
		return err
	}
	c.target = func(v any) error {
		if target == nil {
			return nil
		}
		if rej := validateJSON(target, v, StageTargetSchema); rej != nil {
			return rej
		}
		return nil
	}
	c.encode = func(v any) ([]byte, error) { return json.Marshal(v) }
	c.contentType = "application/json"
	if c.def.PartitionKey != "" {
		code, err := compileJQProgram(c.def.PartitionKey)
		if err != nil {
			return fmt.Errorf("partition_key: %w", err)
		}
		c.key = func(v any) (string, error) { return jqKey(code, v) }
	}
	return nil
}

// noLoader refuses every $ref that leaves the schema: a schema may not
// make the server read files or URLs.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("the schema refers to %s: schemas cannot load files or URLs; put the definitions in the schema ($defs)", url)
}

var printer = message.NewPrinter(language.English)

// compileJSONSchema compiles a JSON Schema (draft 2020-12 unless its
// $schema says otherwise), with formats asserted. Empty: nil.
func compileJSONSchema(field, src string) (*jsonschema.Schema, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%s is not JSON: %v", field, err)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	comp.AssertFormat()
	comp.UseLoader(noLoader{})
	const loc = "sluice:///schema.json"
	if err := comp.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	s, err := comp.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid JSON Schema: %v", field, err)
	}
	return s, nil
}

// parseJSON reads one JSON value, numbers kept exact.
func parseJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, reject(StageParse, jsonProblem(body, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, reject(StageParse, Problem{Location: fmt.Sprintf("offset %d", dec.InputOffset()), Reason: "more data after the JSON value: send one value per message"})
	}
	return v, nil
}

func jsonProblem(body []byte, err error) Problem {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(body[:min(int(se.Offset), len(body))], []byte("\n"))
		return Problem{Location: fmt.Sprintf("line %d, offset %d", line, se.Offset), Reason: "malformed JSON: " + se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Problem{Reason: "malformed JSON: the message is empty or ends too early"}
	}
	return Problem{Reason: "malformed JSON: " + err.Error()}
}

// validateJSON checks v against s and lists every failed leaf of the
// validation, with its JSON Pointer.
func validateJSON(s *jsonschema.Schema, v any, stage string) *Rejection {
	err := s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return reject(stage, Problem{Reason: err.Error()})
	}
	var problems []Problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(problems) >= maxProblems {
			return
		}
		if len(e.Causes) == 0 {
			problems = append(problems, Problem{Location: jsonPointer(e.InstanceLocation), Reason: e.ErrorKind.LocalizedString(printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return reject(stage, problems...)
}

func jsonPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// compileJQProgram compiles a jq program that may not read the
// environment or other inputs.
func compileJQProgram(src string) (*gojq.Code, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("not a jq program: %v", err)
	}
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, fmt.Errorf("jq: %v", err)
	}
	return code, nil
}

// compileJQ makes the transform of a JSON type: the jq program's single
// result. Empty: the input unchanged.
func compileJQ(src string) (func(ctx context.Context, v any) (any, error), error) {
	if strings.TrimSpace(src) == "" {
		return func(_ context.Context, v any) (any, error) { return v, nil }, nil
	}
	code, err := compileJQProgram(src)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, v any) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, transformTimeout)
		defer cancel()
		out, err := jqOne(ctx, code, v)
		if err != nil {
			return nil, reject(StageTransform, Problem{Reason: err.Error()})
		}
		return out, nil
	}, nil
}

// jqOne runs code on v and wants exactly one result.
func jqOne(ctx context.Context, code *gojq.Code, v any) (any, error) {
	iter := code.RunWithContext(ctx, v)
	out, ok := iter.Next()
	if !ok {
		return nil, errors.New("the jq program gave no result")
	}
	if err, isErr := out.(error); isErr {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the jq program ran longer than %s", transformTimeout)
		}
		return nil, fmt.Errorf("jq: %v", err)
	}
	if _, more := iter.Next(); more {
		return nil, errors.New("the jq program gave more than one result: wrap it in [...] to make one array, or pick one")
	}
	return out, nil
}

// jqKey is a partition key picked by a jq expression: a string or a
// number, printed.
func jqKey(code *gojq.Code, v any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), transformTimeout)
	defer cancel()
	out, err := jqOne(ctx, code, v)
	if err != nil {
		return "", err
	}
	switch k := out.(type) {
	case string:
		return k, nil
	case json.Number:
		return k.String(), nil
	case int, float64:
		return fmt.Sprint(k), nil
	case nil:
		return "", errors.New("the partition key expression gave null: the message lacks the field it names")
	}
	return "", fmt.Errorf("the partition key expression gave %T, not a string or number", out)
}
