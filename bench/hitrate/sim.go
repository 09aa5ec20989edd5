package main

import "github.com/cachee/cachee/bench/internal/hitsim"

// The simulator itself lives in bench/internal/hitsim, so that bench/report replays the
// same traces the same way; these names keep this command's code and tests as they were.
type (
	Trace  = hitsim.Trace
	Result = hitsim.Result
)

const (
	formatAuto = hitsim.FormatAuto
	formatARC  = hitsim.FormatARC
	formatLIRS = hitsim.FormatLIRS
	polLFU     = hitsim.PolicyLFU
	polLRU     = hitsim.PolicyLRU
	polOtter   = hitsim.PolicyOtter
)

var (
	allPolicies   = hitsim.AllPolicies
	parsePolicies = hitsim.ParsePolicies
	replay        = hitsim.Replay
	mergeRuns     = hitsim.MergeRuns
	countUnique   = hitsim.CountUnique
	ReadTrace     = hitsim.ReadTrace
	ReadTraceFile = hitsim.ReadTraceFile
	ZipfTrace     = hitsim.ZipfTrace
	NewZipf       = hitsim.NewZipf
)

var (
	moduleRoot       = hitsim.ModuleRoot
	defaultTracesDir = hitsim.DefaultTracesDir
	traceName        = hitsim.TraceName
	knownSizes       = hitsim.KnownSizes
	relativeSizes    = hitsim.RelativeSizes
	findTraces       = hitsim.FindTraces
)
