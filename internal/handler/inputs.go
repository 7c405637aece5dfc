package handler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/funcapp"
)

// Input bindings read data before the handler is invoked: a document
// (cosmosDB in, by id and partition key) or a blob (blob in, by path),
// named with binding expressions filled from the trigger's data: a route
// parameter {id}, a query value {Query.id}, a top-level property of a JSON
// request body or queue message {deviceId}, the message text
// {queueTrigger}, a blob trigger's path parameter {name}, and {rand-guid},
// {DateTime}. Data[binding name] is the document (an object), or a blob's
// content as a blob trigger's is. A document or blob that does not exist
// is, in compat mode, the string "null", as the host sends a missing input
// (GetHttpScriptInvocationContextValue serializes the null value to the
// text null, which is then sent as a string); in clean mode, null.

// bindingData is the trigger data that binding expressions read, by
// lower-cased name.
type bindingData map[string]string

type bindingDataKey struct{}

func withBindingData(ctx context.Context, d bindingData) context.Context {
	return context.WithValue(ctx, bindingDataKey{}, d)
}

func bindingDataOf(ctx context.Context) bindingData {
	d, _ := ctx.Value(bindingDataKey{}).(bindingData)
	return d
}

// add adds values under their lower-cased names.
func (d bindingData) add(prefix string, values map[string]string) {
	for k, v := range values {
		d[strings.ToLower(prefix+k)] = v
	}
}

// addJSON adds the top-level scalar properties of a JSON object.
func (d bindingData) addJSON(body []byte) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return
	}
	for k, raw := range obj {
		var s string
		switch {
		case string(raw) == "null":
			continue
		case json.Unmarshal(raw, &s) == nil:
		case len(raw) > 0 && raw[0] != '{' && raw[0] != '[':
			s = string(raw)
		default:
			continue
		}
		if _, taken := d[strings.ToLower(k)]; !taken {
			d[strings.ToLower(k)] = s
		}
	}
}

// resolve fills the expressions of s; an expression the data lacks is an
// error naming it.
func (d bindingData) resolve(s string) (string, error) {
	var missing []string
	out := pathExpr.ReplaceAllStringFunc(s, func(m string) string {
		e := m[1 : len(m)-1]
		if f, ok := pathExprs[strings.ToLower(e)]; ok {
			return f()
		}
		if v, ok := d[strings.ToLower(e)]; ok {
			return v
		}
		missing = append(missing, m)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s: the trigger's data has no %s", s, strings.Join(missing, ", "))
	}
	return out, nil
}

// checkInput checks an input binding Sluice can read.
func checkInput(f funcapp.Function, b funcapp.Binding) []error {
	switch {
	case b.Type == funcapp.TypeCosmosDB && b.SQLQuery != "":
		return []error{bindingErr(f, b, "sqlQuery", "queries in cosmosDB input bindings are not supported by Sluice yet; read by id and partitionKey, or query in the handler")}
	case b.Type == funcapp.TypeCosmosDB && (b.ID == "" || b.PartitionKey == ""):
		return []error{bindingErr(f, b, "id", "a cosmosDB input needs id and partitionKey (Sluice reads one document)")}
	case b.Type == funcapp.TypeCosmosDB:
		return checkName(f, b, "containerName", b.ContainerName, func(string) error { return nil })
	case b.Type == funcapp.TypeBlob:
		container, name, _ := strings.Cut(b.Path, "/")
		if container == "" || strings.ContainsAny(container, "{}") || name == "" {
			return []error{bindingErr(f, b, "path", "%q: give a container and a blob name, like in/{name}", b.Path)}
		}
		return nil
	}
	return []error{bindingErr(f, b, "type", "%s %s bindings are not supported by Sluice", b.Type, b.Direction)}
}

// readInputs reads f's input bindings into req.Data.
func (r *Runner) readInputs(ctx context.Context, f funcapp.Function, req Request) error {
	if len(f.Inputs) == 0 {
		return nil
	}
	d := bindingDataOf(ctx)
	for _, b := range f.Inputs {
		v, err := r.readInput(ctx, b, d)
		if err != nil {
			return fmt.Errorf("function %s: input %s (%s): %w", f.Name, b.Name, b.Type, err)
		}
		req.Data[b.Name] = v
	}
	return nil
}

func (r *Runner) readInput(ctx context.Context, b funcapp.Binding, d bindingData) (json.RawMessage, error) {
	switch b.Type {
	case funcapp.TypeCosmosDB:
		id, err := d.resolve(b.ID)
		if err != nil {
			return nil, err
		}
		pk, err := d.resolve(b.PartitionKey)
		if err != nil {
			return nil, err
		}
		doc, err := r.app.Docs().Read(ctx, b.ContainerName, pk, id)
		if errors.Is(err, sluice.ErrDocumentNotFound) {
			return r.missingInput(), nil
		}
		if err != nil {
			return nil, err
		}
		return doc.Body, nil
	case funcapp.TypeBlob:
		path, err := d.resolve(b.Path)
		if err != nil {
			return nil, err
		}
		container, name, _ := strings.Cut(path, "/")
		data, _, err := r.app.Blobs().Get(ctx, container, name)
		if errors.Is(err, sluice.ErrBlobNotFound) || errors.Is(err, sluice.ErrBlobContainerNotFound) {
			return r.missingInput(), nil
		}
		if err != nil {
			return nil, err
		}
		if b.DataType == funcapp.DataTypeString && utf8.Valid(data) {
			if r.opts.Mode == Compat {
				return mustJSON(string(mustJSON(string(data)))), nil
			}
			return mustJSON(string(data)), nil
		}
		return mustJSON(base64.StdEncoding.EncodeToString(data)), nil
	}
	return nil, fmt.Errorf("%s inputs are not supported", b.Type)
}

// missingInput is the value of an input that does not exist.
func (r *Runner) missingInput() json.RawMessage {
	if r.opts.Mode == Compat {
		return json.RawMessage(`"null"`)
	}
	return json.RawMessage("null")
}

// queueData is a queue message's binding data.
func queueData(queueName string, m *sluice.Message) bindingData {
	d := bindingData{"queuetrigger": string(m.Body), "id": MessageGUID(queueName, m.ID), "dequeuecount": strconv.Itoa(m.DequeueCount)}
	d.addJSON(m.Body)
	return d
}

// httpData is an HTTP request's binding data.
func httpData(in HTTPRequest) bindingData {
	d := bindingData{}
	d.add("", in.Params)
	for k, vs := range in.Query {
		if len(vs) > 0 {
			d[strings.ToLower("query."+k)] = vs[len(vs)-1]
		}
	}
	for k, v := range in.Headers {
		if len(v) > 0 {
			d[strings.ToLower("headers."+k)] = v[0]
		}
	}
	d.addJSON(in.Body)
	return d
}

// blobData is a blob trigger's binding data.
func blobData(b sluice.Blob) bindingData {
	d := bindingData{"blobtrigger": b.Info.Container + "/" + b.Info.Name}
	d.add("", b.Params)
	return d
}
