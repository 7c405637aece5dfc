package funcapp

import (
	"cmp"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// App is a loaded Azure Functions app folder.
type App struct {
	// Root is the absolute path of the app folder.
	Root string
	// Host is host.json, with the handler's paths resolved.
	Host Host
	// Settings are the app settings: local.settings.json's Values, overridden
	// by the environment (Options.Env). They expand %NAME% expressions and
	// become the handler's environment (see Environ).
	Settings map[string]string
	// Functions are the app's functions, sorted by name.
	Functions []Function
	// Warnings name what the app sets that Sluice ignores, one line each,
	// like "host.json: extensions.serviceBus: not used by Sluice; ignored".
	Warnings []string
}

// Options tune Load.
type Options struct {
	// Env is the environment the app runs in. Its entries win over
	// local.settings.json's Values, as Azure Functions Core Tools lets an
	// environment variable win over the file (and as app settings, which are
	// environment variables on Azure, are deployed over it). nil means the
	// process environment (os.Environ); an empty map means none.
	Env map[string]string
	// CheckSchedule validates the schedule of a timer trigger (after
	// %setting% expansion): an NCRONTAB expression or a TimeSpan. Its error
	// is reported on bindings[i].schedule. nil accepts any schedule that is
	// not empty.
	CheckSchedule func(expr string) error
}

// Files of an app folder.
const (
	HostFile          = "host.json"
	LocalSettingsFile = "local.settings.json"
	FunctionFile      = "function.json"
)

// Load reads the app in folder dir: host.json (required), local.settings.json
// (optional) and every immediate subfolder holding a function.json (folders
// without one are skipped). It checks everything it reads and returns either
// the complete app or an error joining every problem found (errors.Join of
// *Error; see Errors), never both.
//
// The handler executable must exist and be executable: a relative
// defaultExecutablePath is looked up in the app root, then in the working
// directory, and, when it holds no slash, on the PATH app setting, the way
// exec.LookPath does. Host.Handler.Executable and WorkingDir are absolute.
func Load(dir string, opts Options) (*App, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{Msg: "cannot use app folder " + dir + ": " + err.Error()}
	}
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		return nil, &Error{Msg: "app folder " + root + " is not a directory"}
	}
	var errs []error
	var warnings []string

	env := opts.Env
	if env == nil {
		env = environ(os.Environ())
	}
	local, w, lerrs := readLocalSettings(filepath.Join(root, LocalSettingsFile), LocalSettingsFile)
	warnings = append(warnings, w...)
	settings := make(map[string]string, len(local)+len(env))
	maps.Copy(settings, local)
	maps.Copy(settings, env)

	// host.json
	hostReport := &report{file: HostFile}
	var host Host
	switch data, err := os.ReadFile(filepath.Join(root, HostFile)); {
	case os.IsNotExist(err):
		hostReport.errorf("", "missing; an app folder needs a host.json like {\"version\": \"2.0\", \"customHandler\": {\"description\": {\"defaultExecutablePath\": \"handler\"}}}")
	case err != nil:
		hostReport.errorf("", "cannot read: %v", err)
	default:
		host = parseHost(data, settings, hostReport)
		if len(hostReport.errs) == 0 {
			section := "customHandler.description"
			if host.Handler.Legacy {
				section = "httpWorker.description"
			}
			resolveHandler(root, &host.Handler, settings, section, hostReport)
		}
	}
	errs = append(errs, hostReport.errs...)
	warnings = append(warnings, hostReport.warnings...)
	errs = append(errs, lerrs...)

	// Functions.
	functions, skipped, w, ferrs := loadFunctions(root, host.Functions, settings, opts)
	warnings = append(warnings, w...)
	errs = append(errs, ferrs...)

	// host.json's breakers name functions.
	breakerReport := &report{file: HostFile}
	checkBreakers(host, functions, skipped, breakerReport)
	errs = append(errs, breakerReport.errs...)
	warnings = append(warnings, breakerReport.warnings...)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &App{Root: root, Host: host, Settings: settings, Functions: functions, Warnings: warnings}, nil
}

// loadFunctions reads the function.json of every immediate subfolder of root.
// skipped are the function folders that only (host.json's "functions")
// leaves out.
func loadFunctions(root string, only []string, settings map[string]string, opts Options) (functions []Function, skipped, warnings []string, errs []error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, nil, []error{&Error{Msg: "cannot list the app folder: " + err.Error()}}
	}
	var (
		seen   = map[string]string{} // lower-case name -> name
		listed = map[string]bool{}
	)
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue // a file, or a broken link
		}
		data, err := os.ReadFile(filepath.Join(dir, FunctionFile))
		if os.IsNotExist(err) {
			continue // not a function folder
		}
		r := &report{file: e.Name() + "/" + FunctionFile}
		if err != nil {
			r.errorf("", "cannot read: %v", err)
			errs = append(errs, r.errs...)
			continue
		}
		if len(only) > 0 && !slices.ContainsFunc(only, func(n string) bool { return strings.EqualFold(n, e.Name()) }) {
			warnings = append(warnings, r.file+": skipped: host.json's \"functions\" does not list it")
			skipped = append(skipped, e.Name())
			continue
		}
		listed[strings.ToLower(e.Name())] = true
		f := parseFunction(e.Name(), data, settings, r)
		if len(r.errs) == 0 && opts.CheckSchedule != nil {
			for i, b := range f.Bindings {
				if b.Type == TypeTimerTrigger {
					if err := opts.CheckSchedule(b.Schedule); err != nil {
						r.errorf("bindings["+strconv.Itoa(i)+"].schedule", "%v", err)
					}
				}
			}
		}
		if other, dup := seen[strings.ToLower(f.Name)]; dup {
			r.errorf("", "function %q differs from function %q only in case; Azure function names are case-insensitive, so rename one", f.Name, other)
		}
		seen[strings.ToLower(f.Name)] = f.Name
		errs = append(errs, r.errs...)
		warnings = append(warnings, r.warnings...)
		f.Dir = dir
		functions = append(functions, f)
	}
	for _, n := range only {
		if !listed[strings.ToLower(n)] {
			warnings = append(warnings, HostFile+": functions: "+n+": no folder of that name holds a function.json")
		}
	}
	if len(functions) == 0 && len(errs) == 0 {
		errs = append(errs, &Error{Msg: "no functions: no immediate subfolder of " + root + " holds a function.json; an app needs at least one (for instance orders/function.json)"})
	}
	slices.SortFunc(functions, func(a, b Function) int { return cmp.Compare(a.Name, b.Name) })
	return functions, skipped, warnings, errs
}

// Environ returns the app settings as "KEY=value" strings sorted by key: the
// environment of the handler process (to which the runner adds
// FUNCTIONS_CUSTOMHANDLER_PORT and the like).
func (a *App) Environ() []string {
	out := make([]string, 0, len(a.Settings))
	for _, k := range slices.Sorted(maps.Keys(a.Settings)) {
		out = append(out, k+"="+a.Settings[k])
	}
	return out
}

// Function returns the function named name (in any case).
func (a *App) Function(name string) (Function, bool) {
	for _, f := range a.Functions {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return Function{}, false
}
