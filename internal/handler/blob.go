package handler

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
)

// BlobRequest is the request for a blob trigger: Data[name] is the
// content, as Azure passes it to custom handlers: bytes as a base64 string
// (the default, and dataType "binary"), or with dataType "string" the text
// as a string value (so, in compat mode, JSON-encoded twice). Clean mode
// sends text as text and JSON content as JSON, unless binary. Metadata
// carries Uri, Properties, Metadata and the path's parameters.
func BlobRequest(inv Invocation, name, dataType string, b sluice.Blob) Request {
	r, enc := inv.request()
	text := utf8.Valid(b.Data) && dataType != "binary"
	switch {
	case inv.Mode == Clean && text && json.Valid(b.Data):
		r.Data[name] = appendCompact(nil, b.Data)
	case inv.Mode == Clean && text, dataType == "string" && text:
		r.Data[name] = enc.str(string(b.Data))
	default:
		r.Data[name] = mustJSON(base64.StdEncoding.EncodeToString(b.Data))
	}
	r.Metadata["Uri"] = enc.str("/blobs/" + b.Info.Container + "/" + b.Info.Name)
	r.Metadata["Properties"] = enc.object(map[string]any{
		"ContentType": b.Info.ContentType, "Length": b.Info.Size, "ETag": b.Info.ETag,
		"LastModified": b.Info.Modified.UTC().Format(time.RFC3339Nano),
	})
	meta := b.Info.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	r.Metadata["Metadata"] = enc.object(meta)
	for k, v := range b.Params {
		if _, taken := r.Metadata[k]; !taken {
			r.Metadata[k] = enc.str(v)
		}
	}
	return r
}

var pathExpr = regexp.MustCompile(`\{([^{}]*)\}`)

// pathExprs are the expressions of an output path that need no trigger
// data.
var pathExprs = map[string]func() string{
	"rand-guid":    newGUID,
	"sys.randguid": newGUID,
	"datetime":     func() string { return time.Now().UTC().Format("2006-01-02T15-04-05Z") },
	"sys.utcnow":   func() string { return time.Now().UTC().Format("2006-01-02T15-04-05Z") },
}

// checkPath reports the expressions of an output path that cannot be
// resolved: the trigger's blob path parameters and rand-guid/DateTime are
// known.
func checkPath(path string, params []string) error {
	for _, m := range pathExpr.FindAllStringSubmatch(path, -1) {
		e := m[1]
		if _, ok := pathExprs[strings.ToLower(e)]; ok {
			continue
		}
		known := false
		for _, p := range params {
			known = known || strings.EqualFold(p, e)
		}
		if !known {
			return fmt.Errorf("{%s}: Sluice resolves the trigger's blob path parameters, {rand-guid} and {DateTime} in paths, not this", e)
		}
	}
	return nil
}

// BlobContent turns a blob output's value into bytes: a string is its text
// (base64-decoded when binary), any other value its JSON.
func BlobContent(v json.RawMessage, binary bool) ([]byte, string, error) {
	b, err := message(v, binary)
	if err != nil {
		return nil, "", err
	}
	ct := "application/octet-stream"
	switch {
	case len(v) > 0 && v[0] != '"':
		ct = "application/json"
	case !binary && utf8.Valid(b):
		ct = "text/plain; charset=utf-8"
	}
	return b, ct, nil
}
