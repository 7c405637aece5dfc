// Package httpsource is a [pipeline.Source] that reads an HTTP/JSON API
// offering delta links: Microsoft Graph's delta queries (SharePoint list
// items, drive items, users...) and APIs built the same way.
//
// # The protocol
//
// A GET of Config.URL answers a page: a JSON object whose member "value"
// (Config.ItemsField) is an array of items, plus either
// "@odata.nextLink" (Config.NextLinkField: more pages to read at once) or,
// on the last page, "@odata.deltaLink" (Config.DeltaLinkField: a link
// that later gives only what changed since, paged the same way and ending
// with a new delta link). An item carrying "@removed" (Config.RemovedField,
// any value but null) was deleted:
//
//	{"value":[{"id":"7","@removed":{"reason":"deleted"}}],"@odata.deltaLink":"https://…/delta?token=…"}
//
// Links may be relative (they are resolved against the page's own link)
// but must be on Config.URL's scheme, host and port: a link elsewhere is
// an [ErrBadPage], since the request's headers (its credentials) would
// follow it. The default client refuses redirects to another host for the
// same reason.
//
// # Changes and batches
//
// Every page with items becomes one batch, in order. During a full sync
// (from Config.URL) items come as [pipeline.Read] changes in batches
// marked Snapshot; from a delta link as [pipeline.Update] changes; removed
// items as [pipeline.Delete] changes, in either. Key holds the Config.Key
// fields as the item gives them (a string or a json.Number); After holds
// the whole item less its annotations (members starting with "@" or
// holding "@odata.", and Config.RemovedField). Numbers are json.Number.
// Batch.Tables describes the table: Config.Columns, or the columns
// inferred from the items seen so far (see [Config.Columns]), which grow
// as new fields show up.
//
// # Positions
//
// A batch's Position is the link to read after it, its phase (full or
// delta) and a digest of Config.URL, as JSON after "http:":
//
//	http:{"link":"https://graph.microsoft.com/v1.0/…/delta?token=…","phase":"delta","from":"9f86d081884c7d65"}
//
// Run(after) goes on from that link: the next page of a full sync, or the
// changes since a delta link. A position made under another Config.URL is
// not resumed: the source starts a full sync. Positions hold delta tokens
// (not credentials, but whatever the API puts in its links): the change
// log stores them; errors and logs never show them (they name a link by
// scheme, host and path only).
//
// Pages without items are not handed over, but for the last page of a
// full sync, whose delta link saves doing the sync again. Once caught up
// the source polls its newest delta link every PollInterval; Microsoft
// Graph answers a new delta link each time, but handing each over would
// stage an empty change set per poll. So the position stored is the link
// after the last page with changes, older than the one polled: a Run
// started again from it reads the changes since again (none or few, which
// sinks apply idempotently). The cost: after a long quiet spell the stored
// link may have expired, and a restart then does a full sync.
//
// # Expired links, throttling and failures
//
// A next or delta link answered with 410 Gone (an expired token) starts a
// full sync again from Config.URL, logged as a warning. Its Reads bring
// the destination up to date, but items deleted while the token was
// stale are not seen (a full sync only lists what exists): they stay in
// the destination until it is rebuilt (replayed from a full sync) or
// they are deleted by hand. After three full syncs in a row cut short by
// 410, Run gives up ([ErrUnavailable]).
//
// Network errors, timeouts (Config.Timeout a request), 408, 429 and 5xx
// are tried again on the same link after the wait the Retry-After header
// asks for (seconds or a date, at most 5 minutes), else 1s doubling up to
// 1m, Config.Retries times in a row before Run returns [ErrUnavailable].
// Other statuses (400, 401, 403, 404...) end Run with a [*StatusError]
// naming the status, the link and the start of the answer, with what to
// check. A page that cannot be read ([ErrBadPage]) ends Run before any of
// it is handed over. The pipeline starts Run again later, from the last
// batch staged.
package httpsource
