package funcapp

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// resolveHandler makes h.WorkingDir and h.Executable absolute paths, or
// reports why it cannot. field is the JSON path of the handler's
// description ("customHandler.description").
//
// Azure resolves a relative defaultExecutablePath against the app root and,
// when no such file exists there, takes it for a program on the system path
// ("node", "python3") that the operating system finds when the process
// starts. Sluice does the same, and also looks in the working directory
// before the PATH, since handlers built next to their sources
// ("workingDirectory": "app", "defaultExecutablePath": "handler") are
// common. PATH is the app setting PATH (the environment the handler gets);
// like exec.LookPath, only absolute PATH entries are searched, and the file
// found must be executable.
func resolveHandler(root string, h *Handler, settings map[string]string, field string, r *report) {
	wd := h.WorkingDir
	switch {
	case wd == "":
		wd = root
	case !filepath.IsAbs(wd):
		wd = filepath.Join(root, wd)
	}
	wd = filepath.Clean(wd)
	if info, err := os.Stat(wd); err != nil || !info.IsDir() {
		r.errorf(field+".workingDirectory", "%q is not a directory (it is taken relative to the app root); create it or fix the path", h.WorkingDir)
		return
	}
	h.WorkingDir = wd

	exe := h.Executable
	if exe == "" {
		return // reported by ParseHostJSON
	}
	exeField := field + ".defaultExecutablePath"
	if filepath.IsAbs(exe) {
		if msg := checkExecutable(exe); msg != "" {
			r.errorf(exeField, "%q %s", exe, msg)
			return
		}
		h.Executable = filepath.Clean(exe)
		return
	}
	candidates := []string{filepath.Join(root, exe)}
	if wd != root {
		candidates = append(candidates, filepath.Join(wd, exe))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		if msg := checkExecutable(c); msg != "" {
			r.errorf(exeField, "%s %s", relTo(root, c), msg)
			return
		}
		h.Executable = c
		return
	}
	where := "in the app root"
	if wd != root {
		where = "in the app root or the working directory " + relTo(root, wd)
	}
	if strings.ContainsRune(exe, '/') || strings.ContainsRune(exe, filepath.Separator) {
		r.errorf(exeField, "%q is not %s; build the handler there or fix the path", exe, where)
		return
	}
	pathList, _ := lookupSetting(settings, "PATH")
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		c := filepath.Join(dir, exe)
		if checkExecutable(c) == "" {
			h.Executable = c
			return
		}
	}
	r.errorf(exeField, "%q is neither %s nor an executable on PATH; build the handler into the app folder (for Go: go build -o %s) or install the program", exe, where, exe)
}

// checkExecutable returns "" when path is an executable file, else why not.
func checkExecutable(path string) string {
	info, err := os.Stat(path)
	switch {
	case err != nil && os.IsNotExist(err):
		return "does not exist"
	case err != nil:
		return fmt.Sprintf("cannot be read: %v", err)
	case info.IsDir():
		return "is a directory, not an executable"
	case !info.Mode().IsRegular():
		return "is not a regular file"
	case runtime.GOOS != "windows" && info.Mode().Perm()&0o111 == 0:
		return fmt.Sprintf("is not executable; make it so (chmod +x %s)", filepath.Base(path))
	}
	return ""
}

// relTo names path relative to root when it lies inside it.
func relTo(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel)
	}
	return path
}
