package cursorsource

import "time"

// SetAfterPoll makes s call f after every round of reads of its tables.
func SetAfterPoll(s *Source, f func()) { s.afterPoll = f }

// SetAfterKeyPass makes s call f after every key pass (DeleteCheck), once
// its deletes were handed over.
func SetAfterKeyPass(s *Source, f func(table string)) { s.afterKeyPass = f }

// SetClock makes s schedule full refreshes and key passes by now.
func SetClock(s *Source, now func() time.Time) { s.now = now }
