package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// IdentityFile keeps the instance ID of the data directory's instance, and
// identityLock is locked by the process using it.
const (
	IdentityFile = "INSTANCE"
	identityLock = "INSTANCE.lock"
)

// validID is what an instance ID may look like: it names the instance in
// lease keys, logs and connection names.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidateInstanceID checks an instance ID given by a user.
func ValidateInstanceID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("instance ID %q: use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Identity is a data directory's instance ID, held by this process.
type Identity struct {
	ID   string
	lock *Lock
}

// ClaimIdentity returns the instance ID kept in dir (IdentityFile), made
// with newID on first use, and holds it for this process until Release:
// the next process on the directory gets the same ID back, and while this
// one lives no other can, so a previous life of the ID is known dead. It
// fails with ErrInUse when another process holds it (instances sharing a
// directory); the caller then uses an ID of its own.
func ClaimIdentity(dir string, newID func() string) (*Identity, error) {
	l, err := acquire(dir, identityLock, "")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, IdentityFile)
	data, err := os.ReadFile(path)
	id := strings.TrimSpace(string(data))
	if err == nil && ValidateInstanceID(id) == nil {
		return &Identity{ID: id, lock: l}, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = l.Unlock()
		return nil, fmt.Errorf("data directory %s: read the instance ID: %w", dir, err)
	}
	// First use (or a damaged file): a new ID, written whole or not at all.
	id = newID()
	tmp := path + ".tmp"
	if err := writeSynced(tmp, []byte(id+"\n")); err != nil {
		_ = l.Unlock()
		return nil, fmt.Errorf("data directory %s: keep the instance ID: %w", dir, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = l.Unlock()
		return nil, fmt.Errorf("data directory %s: keep the instance ID: %w", dir, err)
	}
	return &Identity{ID: id, lock: l}, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Release lets another process claim the ID. Safe on nil and twice.
func (i *Identity) Release() error {
	if i == nil {
		return nil
	}
	return i.lock.Unlock()
}
