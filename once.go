package sluice

import "time"

// MaxOnceTTL is the longest an idempotency key is remembered.
const MaxOnceTTL = 7 * 24 * time.Hour
