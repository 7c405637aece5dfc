package transform

import "errors"

var (
	// ErrInvalidConfig is returned by New for a Config that cannot work:
	// the message names the table and field, and says what to change.
	ErrInvalidConfig = errors.New("transform: invalid config")
	// ErrTableMismatch is returned by Apply when a table's config does not
	// fit the table as the change set describes it (or as its changes'
	// keys show it): it excludes or computes a key column, or renames a
	// column onto another one that is kept. New cannot see this: the key
	// columns are known only from the change sets. The config must change;
	// nothing of the change set was transformed.
	ErrTableMismatch = errors.New("transform: config does not fit the table")
)
