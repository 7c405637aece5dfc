// Package datadir gives one process the ownership of a data directory.
//
// The embedded engine's store and the SQLite document store are files under
// the data directory; two processes writing them at once lose data. Lock
// takes an exclusive OS lock (flock) on a LOCK file in the directory and
// keeps it until Unlock or the process's end: the kernel releases it when
// the process dies, however it dies, so a lock left by a killed process
// never blocks the next start. The file records who holds the lock, for
// the message the next process shows.
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FileName is the lock file's name in the data directory.
const FileName = "LOCK"

// Owner is what the lock file records about its holder.
type Owner struct {
	PID      int       `json:"pid"`
	Instance string    `json:"instance,omitempty"`
	Since    time.Time `json:"since"`
	Command  string    `json:"command,omitempty"`
}

// InUseError is returned by Lock when another process holds the lock.
type InUseError struct {
	Dir   string
	Owner Owner // zero when the holder did not say
}

func (e *InUseError) Error() string {
	who := "another process"
	if e.Owner.PID != 0 {
		who = fmt.Sprintf("pid %d", e.Owner.PID)
		if e.Owner.Instance != "" {
			who += fmt.Sprintf(" (instance %s", e.Owner.Instance)
			if !e.Owner.Since.IsZero() {
				who += ", since " + e.Owner.Since.Local().Format(time.DateTime)
			}
			who += ")"
		}
	}
	return fmt.Sprintf("data directory %s is in use by %s; stop it or use --data-dir", e.Dir, who)
}

// ErrInUse matches an *InUseError with errors.Is.
var ErrInUse = errors.New("data directory in use")

func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Lock is a held lock on a data directory.
type Lock struct {
	f   *os.File
	dir string
}

// Acquire creates dir if needed and locks it for this process, recording
// instance. It fails at once with an *InUseError when another process
// holds it.
func Acquire(dir, instance string) (*Lock, error) {
	return acquire(dir, FileName, instance)
}

// acquire locks file name of dir for this process, recording instance.
func acquire(dir, name, instance string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: open the lock file: %w", dir, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s: lock: %w", dir, err)
	}
	if held {
		owner := readOwner(f)
		f.Close()
		return nil, &InUseError{Dir: dir, Owner: owner}
	}
	exe, _ := os.Executable()
	data, _ := json.Marshal(Owner{PID: os.Getpid(), Instance: instance, Since: time.Now().UTC(), Command: filepath.Base(exe)})
	// The lock is ours: write who we are for the next process's message.
	// A failed write leaves the lock held, which is what matters.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(data, '\n'), 0)
		_ = f.Sync()
	}
	return &Lock{f: f, dir: dir}, nil
}

func readOwner(f *os.File) Owner {
	var o Owner
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err == nil {
		_ = json.Unmarshal(data, &o)
	}
	return o
}

// Dir is the locked directory.
func (l *Lock) Dir() string { return l.dir }

// Unlock releases the lock. The file stays; it is the lock, not its
// content, that counts. Safe on nil and twice.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
