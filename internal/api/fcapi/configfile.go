package fcapi

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// LoadConfig applies a Firecracker config file (--config-file) as the
// equivalent preboot requests, in Firecracker's order: logger, metrics,
// machine-config, boot-source, drives, network-interfaces, vsock, balloon.
// Each section is validated as its request would be. StartInstance boots
// the result.
func (s *Server) LoadConfig(data []byte) error {
	var cf configFile
	if err := decodeBody(data, &cf); err != nil {
		return fmt.Errorf("%w: %v", ErrConfigFile, err)
	}
	for _, u := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"mmds-config", cf.MMDSConfig},
		{"cpu-config", cf.CPUConfig},
		{"entropy", cf.Entropy},
		{"pmem", cf.Pmem},
		{"memory-hotplug", cf.MemoryHotplug},
		{"serial", cf.Serial},
	} {
		if len(u.raw) > 0 && !bytes.Equal(bytes.TrimSpace(u.raw), []byte("null")) {
			return fmt.Errorf("%w: section %q is not supported by Vireo", ErrConfigFile, u.name)
		}
	}
	var steps []action
	if cf.Logger != nil {
		steps = append(steps, putLogger{*cf.Logger})
	}
	if cf.Metrics != nil {
		steps = append(steps, putMetrics{*cf.Metrics})
	}
	if cf.MachineConfig != nil {
		steps = append(steps, updateMachineConfig{cf.MachineConfig.patch()})
	}
	steps = append(steps, putBootSource{cf.BootSource})
	for _, d := range cf.Drives {
		if f := checkID(d.DriveID); f != nil {
			return fmt.Errorf("%w: drive %q: %s", ErrConfigFile, sanitize(d.DriveID), f.msg)
		}
		steps = append(steps, putDrive{d})
	}
	for _, n := range cf.NetworkInterfaces {
		if f := checkID(n.IfaceID); f != nil {
			return fmt.Errorf("%w: network interface %q: %s", ErrConfigFile, sanitize(n.IfaceID), f.msg)
		}
		steps = append(steps, putNetwork{n})
	}
	if cf.Vsock != nil {
		steps = append(steps, putVsock{*cf.Vsock})
	}
	if cf.Balloon != nil {
		steps = append(steps, putBalloon{*cf.Balloon})
	}
	for _, a := range steps {
		if _, f := s.apply(a); f != nil {
			return fmt.Errorf("%w: %s", ErrConfigFile, f.msg)
		}
	}
	return nil
}
