// Package engine provides the embedded ClickHouse engine: the chDB build of
// ClickHouse (clickhouse-local as a shared library), fetched once from the npm
// registry and run in a child process that serves the native TCP and HTTP
// protocols on loopback.
package engine

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The pinned engine package. Integrity is the npm registry's dist.integrity of
// that exact tarball; a download that does not match it is refused.
const (
	Package    = "@chdb/lib-linux-x64-gnu"
	Version    = "26.7.3-stable.1"
	Integrity  = "sha512-XP97mMqnc5tZpKQywR8N7cLTsHNiTmHr30pC5mzo3jWmukjKn2IBa60c2B/gWUNcuFjOMjWoorQICCqBVj5wpw=="
	PackedSize = 177817999 // bytes of the tarball, for progress reporting

	libName    = "libchdb.so"
	libInTar   = "package/" + libName
	readyMark  = ".complete" // written last; holds Integrity
	fetchLock  = ".lock"
	pollPeriod = 250 * time.Millisecond
)

// ErrNoNPM is returned by Fetch when the engine is not cached and npm is not
// installed to fetch it.
var ErrNoNPM = errors.New("npm not found in PATH: install Node.js with npm so the embedded " +
	"ClickHouse engine can be fetched once, or point auditstore at any ClickHouse server " +
	"instead (flag -clickhouse host:9000 or AUDITSTORE_CLICKHOUSE)")

// Progress is called while the engine package downloads, with the bytes
// received so far and the total expected. It may be nil.
type Progress func(done, total int64)

// DefaultCacheDir is where the engine is cached when no directory is given:
// the user's cache directory (XDG_CACHE_HOME or ~/.cache on Linux).
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find user cache dir: %w", err)
	}
	return filepath.Join(dir, "auditstore", "engine"), nil
}

// Fetch returns the path of the cached libchdb.so for the pinned Version,
// downloading it first if needed: `npm pack` the package into a private
// directory, check the tarball against Integrity, and unpack the library.
// Concurrent callers (several processes included) share one download.
// It returns ErrNoNPM when a download is needed and npm is missing.
func Fetch(ctx context.Context, cacheDir string, progress Progress) (string, error) {
	dir := filepath.Join(cacheDir, Version)
	lib := filepath.Join(dir, libName)
	if cached(dir) {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create engine cache: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, fetchLock))
	if err != nil {
		return "", err
	}
	defer unlock()
	if cached(dir) { // another process fetched it while we waited for the lock
		return lib, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", ErrNoNPM
	}
	tmp, err := os.MkdirTemp(dir, "fetch-")
	if err != nil {
		return "", fmt.Errorf("create fetch dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	tarball, err := npmPack(ctx, npm, tmp, progress)
	if err != nil {
		return "", err
	}
	if err := checkIntegrity(tarball); err != nil {
		return "", err
	}
	if err := unpackLib(tarball, lib); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, readyMark), []byte(Integrity+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("mark engine cache complete: %w", err)
	}
	return lib, nil
}

func cached(dir string) bool {
	mark, err := os.ReadFile(filepath.Join(dir, readyMark))
	if err != nil || strings.TrimSpace(string(mark)) != Integrity {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, libName))
	return err == nil && st.Mode().IsRegular() && st.Size() > 0
}

// lockFile takes an exclusive advisory lock, waiting for other holders.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open engine lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock engine cache: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// npmPack runs `npm pack` with a cache of its own inside dir, so that the
// bytes it has received can be measured while it runs.
func npmPack(ctx context.Context, npm, dir string, progress Progress) (string, error) {
	npmCache := filepath.Join(dir, "npm-cache")
	cmd := exec.CommandContext(ctx, npm, "pack", Package+"@"+Version,
		"--pack-destination", dir, "--cache", npmCache,
		"--silent", "--no-fund", "--no-audit", "--loglevel=error")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start npm pack: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	tick := time.NewTicker(pollPeriod)
	defer tick.Stop()
	for {
		select {
		case err := <-waited:
			if err != nil {
				return "", fmt.Errorf("npm pack %s@%s: %w: %s", Package, Version, err,
					strings.TrimSpace(stderr.String()))
			}
			if progress != nil {
				progress(PackedSize, PackedSize)
			}
			name := strings.NewReplacer("@", "", "/", "-").Replace(Package) + "-" + Version + ".tgz"
			return filepath.Join(dir, name), nil
		case <-tick.C:
			if progress != nil {
				progress(min(dirSize(npmCache), PackedSize), PackedSize)
			}
		}
	}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func checkIntegrity(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open engine tarball: %w", err)
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash engine tarball: %w", err)
	}
	got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil))
	if got != Integrity {
		return fmt.Errorf("engine tarball integrity mismatch: got %s, want %s", got, Integrity)
	}
	return nil
}

// unpackLib streams libchdb.so out of the tarball into dst, atomically.
func unpackLib(tarball, dst string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("open engine tarball: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("read engine tarball: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("engine tarball has no %s", libInTar)
		}
		if err != nil {
			return fmt.Errorf("read engine tarball: %w", err)
		}
		if hdr.Name != libInTar || hdr.Typeflag != tar.TypeReg {
			continue
		}
		tmp := dst + ".part"
		out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return fmt.Errorf("create %s: %w", tmp, err)
		}
		_, err = io.Copy(out, tr)
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return fmt.Errorf("unpack %s: %w", libName, err)
		}
		return os.Rename(tmp, dst)
	}
}
