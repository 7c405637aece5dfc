// Package transform reshapes a pipeline destination's changes before its
// sink applies them: which rows it takes (a filter), which columns
// (include or exclude), under which names (rename), and columns computed
// from the row. It is pure: no I/O, and it never modifies what it is
// given.
//
// A destination's [Config] names source tables ("public.orders", or "*"
// for every table not named) and says for each, in a [TableConfig], what
// to do. [New] checks it and compiles its jq expressions (gojq); the
// caller then runs [Transform.Apply] on each change set between loading
// it and its sink's Apply:
//
//	cs, changes, rejected, err := t.Apply(ctx, cs, changes)
//	if err != nil { return err } // retry later: ctx ended, or ErrTableMismatch
//	more, err := sink.Apply(ctx, cs, changes)
//	// dead-letter rejected and more
//
// # The row an expression sees
//
// A change's After (for a delete, its Before when the source gives it,
// else its Key) as a JSON object; the variables $op ("insert", "update",
// "delete", "read"), $table (the source table's name) and $key (the Key
// as an object). Values are as the change holds them: numbers are
// json.Number, which jq takes exactly (9007199254740993 stays itself;
// "12.50" written by .amount stays "12.50"), strings are strings. Sources
// that read text (PostgreSQL's pgoutput, the cursor source) give every
// value as a string: compare those with strings (.status == "open"), or
// convert first ((.amount | tonumber) > 100); in jq every string sorts
// after every number, so .amount > 100 on a string is always true.
// $ENV and env are empty; input and inputs give nothing.
//
// # Filter: which rows belong to the destination
//
// A row belongs when the Filter gives true; false, null or no result mean
// it does not. What happens to a change whose row does not belong:
//   - an Insert or a Read is dropped;
//   - an Update becomes a Delete of its Key: the row has left the
//     destination's range (a table of open orders must lose an order when
//     it closes). Its Before, if any, is kept (reshaped), its After
//     dropped. An Update whose row does belong is kept as an Update,
//     which sinks apply as an upsert, so a row that enters the range is
//     written;
//   - a Delete is never filtered: deleting a row the destination never
//     had does nothing in every sink, and its row (often the key alone)
//     could not say whether it had it.
//
// A Filter that fails, gives more than one result, or gives something
// other than a boolean or null rejects the change: it is returned as a
// [pipeline.Rejected] naming the table, the expression and the error, and
// the others go on.
//
// # Reshaping rows
//
// For the changes kept, in this order:
//  1. Compute evaluates each computed column on the source row, so its
//     expression sees the source's names; the value replaces a source
//     column of that name or adds a column. An error (or no result, or
//     more than one, or a NaN) rejects the change, except a Delete's: a
//     Delete is never rejected, and a Before that cannot be computed is
//     left out (sinks need only the Key).
//  2. Include keeps only the columns it names, or Exclude drops those it
//     names. Key columns and computed columns are always kept.
//  3. Rename renames columns, key columns included.
//
// The same steps apply to After, Before and Key (Key holds only key
// columns, which are neither computed nor dropped, so only Rename changes
// it). A computed column's value is what jq gives, numbers as json.Number
// (integers written in full, never 1e+06).
//
// # The change set's description
//
// Apply returns the change set with Tables describing the destination's
// shape of each configured table: columns dropped and renamed, computed
// columns with their [Computed].Type (in place of the column they
// replace, or after the others by name), key flags kept; an SQL sink
// that creates its tables creates them so. Count is the number of
// changes returned.
//
// Some rules depend on the table, which only change sets describe (their
// Tables, and each change's Key): excluding or computing a key column,
// or renaming a column onto another that is kept. Apply returns
// [ErrTableMismatch] for those instead of transforming the change set.
// For tables a change set does not describe, a row whose columns would
// collide is rejected.
//
// Tables without config (and without "*") pass through as they are: a
// Transform of an empty Config returns its inputs themselves, without
// copying.
package transform
