package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Environment variables that turn a process into an engine child. The parent
// re-executes its own binary with them set (see Start); the package's init
// function notices them and never returns to the program's main.
const (
	envChildLib       = "AUDITSTORE_ENGINE_LIB"
	envChildArgs      = "AUDITSTORE_ENGINE_ARGS"
	envChildEphemeral = "AUDITSTORE_ENGINE_EPHEMERAL" // a data dir to remove on exit
)

func init() {
	lib := os.Getenv(envChildLib)
	if lib == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(envChildArgs)), &args); err != nil {
		fmt.Fprintf(os.Stderr, "engine child: bad %s: %v\n", envChildArgs, err)
		os.Exit(2)
	}
	err := runEngine(lib, args)
	if dir := os.Getenv(envChildEphemeral); dir != "" {
		_ = os.RemoveAll(dir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "engine child: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runEngine loads libchdb and runs clickhouse-local's command line in this
// process. It returns when the query given in args finishes: for a serving
// engine, when standard input is closed.
func runEngine(lib string, args []string) error {
	// The library is a C++ program of its own: lock the calling goroutine
	// to one OS thread for the whole call so its thread-local state stays put.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return fmt.Errorf("load %s: %w", lib, err)
	}
	var (
		setSignalHandlers func(enabled int32)
		queryCmdline      func(argc int32, argv unsafe.Pointer) uintptr
		resultError       func(res uintptr) *byte
	)
	purego.RegisterLibFunc(&setSignalHandlers, h, "chdb_set_signal_handlers_enabled")
	purego.RegisterLibFunc(&queryCmdline, h, "chdb_query_cmdline")
	purego.RegisterLibFunc(&resultError, h, "chdb_result_error")

	// Go owns signals in this process; the engine must not install its own.
	setSignalHandlers(0)

	cstrs := make([][]byte, len(args))
	argv := make([]*byte, len(args)+1)
	for i, a := range args {
		cstrs[i] = append([]byte(a), 0)
		argv[i] = &cstrs[i][0]
	}
	res := queryCmdline(int32(len(args)), unsafe.Pointer(&argv[0]))
	runtime.KeepAlive(cstrs)
	runtime.KeepAlive(argv)
	if res == 0 {
		return fmt.Errorf("engine returned no result")
	}
	if msg := resultError(res); msg != nil {
		if s := goString(msg); s != "" {
			return fmt.Errorf("engine: %s", s)
		}
	}
	return nil
}

func goString(p *byte) string {
	if p == nil {
		return ""
	}
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
