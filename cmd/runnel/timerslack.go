package main

import "time"

// The timer slack of runnel serve.
//
// Go's runtime runs a monitor thread (sysmon) that, while the program is
// busy, sleeps 20 µs at a time between looks for goroutines stuck in system
// calls. Each sleep is a timer and two context switches; on a virtual
// machine, where arming a timer and switching threads cost several µs, that
// polling took about 8% of the disk engine's CPU under 1 KiB PutRecords and
// GetRecords load. Linux lets a thread's timers fire late by up to its timer
// slack (50 µs by default) so that wakeups can be merged; with a slack of
// 4 ms sysmon sleeps about 4 ms instead, and, looking less often, hands
// fewer Ps held in the disk's system calls to other threads (fewer threads
// woken and parked). The other timers of the process (Go's timers, the
// network poller's timeouts) fire up to 4 ms late, and no deadline of the
// server is that tight. Measured in docs/BENCHMARKS.md: 1 ms took about 9%
// off the CPU per record under 1 KiB PutRecords and GetRecords load, 4 ms
// about 9% more.
//
// A thread's slack is inherited by the threads it creates and kept across
// execve, but sysmon starts before any of the program's code runs. So
// runnel serve sets the slack on its own thread and executes itself again;
// the new process's threads, sysmon included, start with it. A slack that
// is already at least as large (systemd's TimerSlackNSec=, an outer
// runnel) is left as it is.

// defaultTimerSlack is the timer slack runnel serve runs with.
const defaultTimerSlack = 4 * time.Millisecond

// timerSlackEnv marks the process runnel serve executed to apply its timer
// slack, so that a slack that did not take is not tried again in a loop.
const timerSlackEnv = "RUNNEL_TIMER_SLACK_APPLIED"
