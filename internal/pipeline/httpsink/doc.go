// Package httpsink is the HTTP write strategy of data pipelines: a
// [pipeline.Sink] that POSTs each change set, as JSON, to an endpoint the
// user runs.
//
// # Requests
//
// [Sink.Apply] cuts a change set into parts of at most [Config.BatchSize]
// changes and POSTs them in order, one after the other, each as
//
//	POST <Config.URL>
//	Content-Type: application/json
//	Idempotency-Key: <pipeline>/<destination>/<seq>/<part>
//	Sluice-Pipeline: <pipeline>
//	Sluice-Change-Set: <seq>
//
//	{"pipeline": "orders", "destination": "webhook", "change_set": 7,
//	 "part": 0, "parts": 3, "position": "16/B374D848",
//	 "changes": [{"op": "update", "table": "public.orders",
//	              "key": {"id": 1}, "after": {...}, "before": {...},
//	              "position": "16/B374D848", "commit_time": "..."}, ...]}
//
// plus [Config.Headers]. Parts count from 0. A change's "after" is left
// out for deletes, "before" where the source does not give it,
// "position" and "commit_time" when unknown. An empty change set sends
// nothing.
//
// # Delivering once: receivers deduplicate by Idempotency-Key
//
// A change set is sent at least once: after an error (or a crash, or a
// replay) the whole change set is sent again, parts the receiver already
// took included. The Idempotency-Key of a part depends only on the
// pipeline, the destination, the change set's number and the part's
// number, so a part sent again carries the key it had: a receiver that
// records the keys it has applied (in the same transaction as the
// changes, ideally) and answers 2xx to a key it has seen gets each
// change once. Keep [Config.BatchSize] unchanged while change sets are
// still to be retried: it decides which changes a part holds.
//
// # Answers
//
//   - 2xx: the part is delivered.
//   - 401, 403: [ErrCredentials]; the change set is tried again later, so
//     nothing is lost while an operator fixes the credentials.
//   - 404: [ErrNotFound]: a wrong URL does not dead-letter everything.
//   - 408, 409, 425, 429, 5xx, network errors and timeouts:
//     [ErrUnavailable]; the error's text holds the answer's Retry-After.
//   - 3xx: [ErrRedirect]. Redirects that keep the POST (307, 308) are
//     followed; those that would turn it into a GET are not.
//   - Other 4xx (400, 413, 422, ...): the receiver refuses the part's
//     changes for good. They are returned as [pipeline.Rejected] (to be
//     dead-lettered) with the reason "HTTP 422 from <scheme://host/path>:
//     <the answer's first 200 bytes>", and the next part is sent.
//
// # Secrets
//
// Header values (an Authorization header, an API key) are never logged
// nor put in errors: messages name the URL as scheme://host/path, without
// its user, password or query, and the receiver's answers quoted in them
// have header values blanked out.
package httpsink
