// Package agent is the compute-sharing worker: it watches the GPU and the user's limits
// (temperature, power, schedule, pause), pulls scoring jobs from a pool, runs them through
// package dva, signs the results and reports what was earned. Its subpackage pool is the
// coordinator that hands out jobs and verifies what comes back.
package agent
