package handler

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
)

// BlobRequest is the request for a blob trigger: Data[name] is the
// content, as Azure passes it to custom handlers: bytes as a base64 string
// (the default, and dataTypes "binary" and "stream"), or with dataType
// "string" the text as a string value (so, in compat mode, JSON-encoded
// twice). Clean mode sends text as text and JSON content as JSON, unless
// binary or stream.
//
// Metadata is what the blob trigger gives (the storage extension's
// BlobTriggerBinding.CreateBindingData): Uri, the blob's absolute URL (a
// string value), Properties (Azure's BlobProperties, see blobProperties),
// Metadata, and the path's parameters as string values.
func BlobRequest(inv Invocation, name, dataType, uri string, b sluice.Blob, data []byte) Request {
	r, enc := inv.request()
	text := utf8.Valid(data) && !sendsBytes(dataType)
	switch {
	case inv.Mode == Clean && text && json.Valid(data):
		r.Data[name] = appendCompact(nil, data)
	case inv.Mode == Clean && text, dataType == "string" && text:
		r.Data[name] = enc.str(string(data))
	default:
		r.Data[name] = mustJSON(base64.StdEncoding.EncodeToString(data))
	}
	r.Metadata["Uri"] = enc.str(uri)
	meta := b.Info.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	r.Metadata["Properties"] = enc.blobProperties(b, meta, data)
	r.Metadata["Metadata"] = appendStrings(nil, meta, top)
	for k, v := range b.Params {
		if _, taken := r.Metadata[k]; !taken {
			r.Metadata[k] = enc.str(v)
		}
	}
	return r
}

// sendsBytes reports whether a binding's dataType sends bytes: "binary",
// and "stream", which a custom handler receives and gives as base64 too.
func sendsBytes(dataType string) bool {
	return dataType == "binary" || dataType == "stream"
}

// blobProperties is Metadata.Properties: the .NET storage SDK's
// BlobProperties as the host serializes it (every property, enums as
// numbers, unset dates as 0001-01-01, and the ETag, a struct without
// public fields, as {}), filled from what Sluice knows of the blob: a
// block blob, in the hot tier, unleased, with its content's MD5. In clean
// mode the ETag is the blob's.
func (e encoder) blobProperties(b sluice.Blob, meta map[string]string, data []byte) json.RawMessage {
	etag := any(map[string]any{})
	modified := b.Info.Modified.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05+00:00")
	if e.mode == Clean {
		etag = b.Info.ETag
		modified = b.Info.Modified.UTC().Format(time.RFC3339Nano)
	}
	sum := md5.Sum(data)
	const never = "0001-01-01T00:00:00+00:00"
	return mustJSON(map[string]any{
		"LastModified": modified, "CreatedOn": modified, "Metadata": meta,
		"ObjectReplicationDestinationPolicyId": nil, "ObjectReplicationSourceProperties": nil,
		"BlobType": 0, "CopyCompletedOn": never, "CopyStatusDescription": nil, "CopyId": nil, "CopyProgress": nil,
		"CopySource": nil, "CopyStatus": 0, "BlobCopyStatus": nil, "IsIncrementalCopy": false, "DestinationSnapshot": nil,
		"LeaseDuration": 0, "LeaseState": 0, "LeaseStatus": 1,
		"ContentLength": b.Info.Size, "ContentType": b.Info.ContentType, "ETag": etag,
		"ContentHash": base64.StdEncoding.EncodeToString(sum[:]), "ContentEncoding": nil, "ContentDisposition": nil,
		"ContentLanguage": nil, "CacheControl": nil, "BlobSequenceNumber": 0, "AcceptRanges": "bytes",
		"BlobCommittedBlockCount": 0, "IsServerEncrypted": false, "EncryptionKeySha256": nil, "EncryptionScope": nil,
		"AccessTier": "Hot", "AccessTierInferred": true, "ArchiveStatus": nil, "AccessTierChangedOn": never,
		"VersionId": nil, "IsLatestVersion": false, "TagCount": 0, "ExpiresOn": never, "IsSealed": false,
		"RehydratePriority": nil, "LastAccessed": never,
		"ImmutabilityPolicy": map[string]any{"ExpiresOn": nil, "PolicyMode": nil}, "HasLegalHold": false,
	})
}

// BlobURL is the absolute URL of a blob on Sluice's HTTP API at base (the
// app's URL): what Metadata.Uri holds, as Azure gives the blob's URL.
func BlobURL(base, container, name string) string {
	if base == "" {
		base = "http://localhost"
	}
	return strings.TrimSuffix(base, "/") + "/api/v1/blobs/" + url.PathEscape(container) + "/" + escapeSegments(name)
}

// escapeSegments escapes each segment of a path.
func escapeSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
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
