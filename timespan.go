package sluice

import (
	"time"

	"github.com/sluicehq/sluice/internal/schedule"
)

// ParseTimeSpan reads a duration written as a .NET TimeSpan, as Azure
// Functions' settings (host.json) and TimerTrigger.Schedule write them:
// "hh:mm", "hh:mm:ss" or "d.hh:mm:ss", the seconds maybe with a fraction
// ("00:00:01.5"). Hours are 0-23, minutes and seconds 0-59; a negative
// span is an error.
func ParseTimeSpan(s string) (time.Duration, error) { return schedule.ParseTimeSpan(s) }
