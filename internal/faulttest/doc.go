// Package faulttest is the fault-injection suite: it drives the real
// server binary (internal/servertest) and the embedded ClickHouse engine
// through ClickHouse outages, SIGKILLs of the engine and of the server,
// a full disk under the write-ahead log, a poison event and two servers
// on one database, and checks after each that every acknowledged event is
// stored exactly once and that the server serves again by itself.
//
// It runs only when AUDITSTORE_FAULT is set (CI sets it): "1" for the CI
// size, "long" for the longer run (100 server SIGKILLs, ClickHouse stopped
// for 2 minutes). Each scenario prints one summary line:
//
//	fault: scenario=server-sigkill runs=20 acked=… stored=… lost=0 duplicated=0 …
package faulttest
