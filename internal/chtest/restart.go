package chtest

import "time"

// Restarts is how many times the shared embedded engine has been started
// again after dying; 0 when the test binary has no embedded engine (yet).
// It never starts one.
func Restarts() int {
	if e := running(); e != nil {
		return e.Restarts()
	}
	return 0
}

// DiedSince reports whether the shared embedded engine died after Restarts
// returned before, and if so waits (at most 45 s) until it answers again.
// A client can see a query fail a moment before the engine's supervisor
// sees the process gone, so a live engine is watched for one second more.
// chDB aborts now and then (see engine.Supervisor); a test uses this to
// repeat a read that failed only because the engine went away under it.
func DiedSince(before int) bool {
	e := running()
	if e == nil {
		return false
	}
	died := false
	for deadline := time.Now().Add(time.Second); !died && time.Now().Before(deadline); {
		died = e.Err() != nil || e.Restarts() > before
		if !died {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !died {
		return false
	}
	for deadline := time.Now().Add(45 * time.Second); e.Err() != nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	return e.Err() == nil
}
