//go:build race

package producer_test

// raceEnabled is set when the tests run under the race detector, which
// makes the million-record test too slow for a test run.
const raceEnabled = true
