// Package filesink is the file write strategy of data pipelines: a
// [pipeline.Sink] that writes each change set as files in a blob store,
// for a data lake to read.
//
// # Files
//
// [Sink.Apply] writes one file per table a change set touches, holding
// that table's changes in their order, named
//
//	<Prefix><table>/<seq as %020d>.<ndjson|csv>[.gz]
//
// so that a table's files sort by change set. Table names keep letters,
// digits and ".-_$"; other bytes are written as %XX (a "/" as %2F), and
// names "." and ".." as "%2E" and "%2E%2E" (an empty name as "%00"), so
// that a table cannot reach outside its folder. An empty change set
// writes nothing.
//
// Writing a change set again (after a crash, or a replay) writes the same
// names with the same bytes: files are overwritten, never added, so a
// lake sees each change set once.
//
// # NDJSON (the default)
//
// One JSON object per line and change, as the pipeline's change log
// holds it: {"op", "table", "key", "after", "before", "position",
// "commit_time"}; "after" is left out for deletes, "before" where the
// source does not give it, "position" and "commit_time" when unknown.
// Content type application/x-ndjson.
//
// # CSV
//
// A header "_op,_position,_commit_time," followed by the table's columns
// in the order the change set's [pipeline.Table] gives them, then any
// other column its rows hold, sorted by name (for a table the change set
// does not describe: every column its rows hold, sorted). Then a line per
// change: the row after the change; for deletes, the key columns filled
// and the others empty; an update that moved its row to a new key (a key
// column of After differs from Key) is two lines, a delete of the old key
// then the new row. Cells: NULL and a missing column are empty (as is
// an empty string: CSV cannot tell them apart), json.Number its text,
// bool true or false, JSON values (maps and slices) their JSON text,
// _commit_time RFC 3339 in UTC (empty when unknown). Fields are quoted as
// RFC 4180 says (by encoding/csv); lines end with "\n". Content type
// text/csv; charset=utf-8.
//
// # Gzip
//
// With [Config.Gzip] each file is gzip-compressed (no name nor time in
// its header, so the bytes stay the same), its name ends in ".gz" and its
// content type is application/gzip.
package filesink
