package qmp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/vireo-vmm/vireo/internal/kvm"
)

// StatsReporter is implemented by a Machine that can read KVM's binary
// statistics. The server then offers QEMU's query-stats,
// query-stats-schemas and the human monitor's `info stats`.
type StatsReporter interface {
	// KVMStats returns the VM's statistics (target "vm": one set, VCPU
	// -1) or each vCPU's (target "vcpu"). Before the machine exists it
	// returns no sets.
	KVMStats(target string) ([]StatsSet, error)
}

// StatsSet is the statistics of the VM or of one vCPU.
type StatsSet struct {
	VCPU  int // vCPU index, -1 for the VM
	Stats []kvm.Stat
}

// The one statistics provider and the targets it covers (QEMU 7.2's
// StatsProvider and StatsTarget).
const statsProvider = "kvm"

var statsTargets = []string{"vm", "vcpu"}

// Results, with QEMU's member names.
type (
	statsResult struct {
		Provider string      `json:"provider"`
		QOMPath  string      `json:"qom-path,omitempty"`
		Stats    []statValue `json:"stats"`
	}
	statValue struct {
		Name  string `json:"name"`
		Value any    `json:"value"` // integer, boolean or list of integers
	}
	statsSchema struct {
		Provider string             `json:"provider"`
		Target   string             `json:"target"`
		Stats    []statsSchemaValue `json:"stats"`
	}
	statsSchemaValue struct {
		Name       string `json:"name"`
		Type       string `json:"type"`
		Unit       string `json:"unit,omitempty"`
		Base       int    `json:"base,omitempty"`
		Exponent   int    `json:"exponent"`
		BucketSize int    `json:"bucket-size,omitempty"`
	}
)

// statsFilter is query-stats' providers argument: nil accepts every
// statistic; otherwise only those named (or all when names is absent).
type statsFilter struct {
	any   bool // a kvm entry without names
	names map[string]bool
}

func (f *statsFilter) accepts(name string) bool {
	return f == nil || f.any || f.names[name]
}

// parseProviders reads query-stats' providers: a list of
// {"provider": "kvm", "names": [...]} objects. It returns nil for "no
// filter" and a filter that accepts nothing when no entry names kvm.
func parseProviders(raw json.RawMessage) (*statsFilter, *Error) {
	var elems []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		return nil, genericf("Invalid parameter type for 'providers', expected: array")
	}
	f := &statsFilter{names: map[string]bool{}}
	for i, e := range elems {
		at := fmt.Sprintf("providers[%d]", i)
		var obj map[string]json.RawMessage
		if len(e) == 0 || e[0] != '{' || json.Unmarshal(e, &obj) != nil {
			return nil, genericf("Invalid parameter type for '%s', expected: object", at)
		}
		p, ok := obj["provider"]
		if !ok {
			return nil, genericf("Parameter '%s.provider' is missing", at)
		}
		name, ok := jsonString(p)
		if !ok {
			return nil, genericf("Invalid parameter type for '%s.provider', expected: string", at)
		}
		if name != statsProvider {
			return nil, genericf("Parameter 'provider' does not accept value '%s'", name)
		}
		for k := range obj {
			if k != "provider" && k != "names" {
				return nil, genericf("Parameter '%s.%s' is unexpected", at, k)
			}
		}
		rawNames, ok := obj["names"]
		if !ok {
			f.any = true
			continue
		}
		names, e := stringList(rawNames, at+".names")
		if e != nil {
			return nil, e
		}
		for _, n := range names {
			f.names[n] = true
		}
	}
	return f, nil
}

// statJSON is a statistic's value as QEMU gives it: a boolean for
// boolean units, a list for histograms, else an integer.
func statJSON(st kvm.Stat) any {
	switch {
	case st.Histogram():
		return st.Values
	case st.Unit() == "boolean":
		return len(st.Values) > 0 && st.Values[0] != 0
	case len(st.Values) > 0:
		return st.Values[0]
	}
	return 0
}

// statsCommands adds query-stats and query-stats-schemas when the
// machine can read KVM's statistics.
func statsCommands(s *Server, cmds map[string]command) {
	r, ok := s.m.(StatsReporter)
	if !ok {
		return
	}
	cmds["query-stats"] = command{
		params: []param{
			{name: "target", kind: argEnum, enum: statsTargets},
			{name: "providers", kind: argRaw, optional: true},
			{name: "vcpus", kind: argRaw, optional: true},
		},
		run: func(a args) (any, error) {
			target, _ := a.str("target")
			var filter *statsFilter
			if raw, ok := a.raw("providers"); ok {
				f, e := parseProviders(raw)
				if e != nil {
					return nil, e
				}
				filter = f
			}
			var vcpus []string
			raw, hasVCPUs := a.raw("vcpus")
			if hasVCPUs {
				if target != "vcpu" {
					return nil, genericf("Parameter 'vcpus' is unexpected")
				}
				var e *Error
				if vcpus, e = stringList(raw, "vcpus"); e != nil {
					return nil, e
				}
			}
			sets, err := r.KVMStats(target)
			if err != nil {
				return nil, genericf("%s", err.Error())
			}
			out := []statsResult{}
			for _, set := range sets {
				res := statsResult{Provider: statsProvider, Stats: []statValue{}}
				if set.VCPU >= 0 {
					res.QOMPath = qomPath(set.VCPU)
					if hasVCPUs && !slices.Contains(vcpus, res.QOMPath) {
						continue
					}
				}
				for _, st := range set.Stats {
					if filter.accepts(st.Name) {
						res.Stats = append(res.Stats, statValue{Name: st.Name, Value: statJSON(st)})
					}
				}
				if len(res.Stats) > 0 {
					out = append(out, res)
				}
			}
			return out, nil
		},
	}
	cmds["query-stats-schemas"] = command{
		params: []param{{name: "provider", kind: argEnum, enum: []string{statsProvider}, optional: true}},
		run: func(args) (any, error) {
			out := []statsSchema{}
			for _, target := range statsTargets {
				sets, err := r.KVMStats(target)
				if err != nil {
					return nil, genericf("%s", err.Error())
				}
				if len(sets) == 0 {
					continue
				}
				sc := statsSchema{Provider: statsProvider, Target: target, Stats: []statsSchemaValue{}}
				for _, st := range sets[0].Stats {
					v := statsSchemaValue{Name: st.Name, Type: st.Type(), Unit: st.Unit(), Exponent: st.Exponent}
					if st.Exponent != 0 {
						v.Base = st.Base()
					}
					if st.Type() == "linear-histogram" {
						v.BucketSize = st.BucketSize
					}
					sc.Stats = append(sc.Stats, v)
				}
				out = append(out, sc)
			}
			return out, nil
		},
	}
}

// hmpStats prints `info stats TARGET [NAMES] [PROVIDER]` as QEMU does:
// NAMES is a comma-separated list or "*"; the vcpu target shows the
// current vCPU.
func (s *Server) hmpStats(b *strings.Builder, words []string, current int) {
	r, ok := s.m.(StatsReporter)
	if !ok {
		b.WriteString("Error: this machine does not read KVM statistics\n")
		return
	}
	if len(words) == 0 || !slices.Contains(statsTargets, words[0]) {
		b.WriteString("Error: expected a target: vm or vcpu\n")
		return
	}
	var filter *statsFilter
	if len(words) > 1 && words[1] != "*" {
		filter = &statsFilter{names: map[string]bool{}}
		for _, n := range strings.Split(words[1], ",") {
			filter.names[n] = true
		}
	}
	if len(words) > 2 && words[2] != statsProvider {
		fmt.Fprintf(b, "Error: Parameter 'provider' does not accept value '%s'\n", words[2])
		return
	}
	sets, err := r.KVMStats(words[0])
	if err != nil {
		fmt.Fprintf(b, "Error: %s\n", err)
		return
	}
	for _, set := range sets {
		if set.VCPU >= 0 && set.VCPU != current {
			continue
		}
		header := false
		for _, st := range set.Stats {
			if !filter.accepts(st.Name) {
				continue
			}
			if !header {
				fmt.Fprintf(b, "provider: %s\n", statsProvider)
				header = true
			}
			kind := st.Type()
			if u := st.Unit(); u != "" {
				kind += ", " + u
			}
			v := statJSON(st)
			if yes, ok := v.(bool); ok {
				v = map[bool]string{false: "no", true: "yes"}[yes]
			}
			fmt.Fprintf(b, "    %s (%s): %v\n", st.Name, kind, v)
		}
	}
}
