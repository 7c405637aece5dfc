//go:build !unix

package datadir

import (
	"errors"
	"os"
)

func tryLock(*os.File) (bool, error) {
	return false, errors.New("locking a data directory is supported on Unix systems only")
}

func unlock(*os.File) error { return nil }
