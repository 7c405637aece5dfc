package cursorsource

// SetAfterPoll makes s call f after every round of reads of its tables.
func SetAfterPoll(s *Source, f func()) { s.afterPoll = f }
