package fcapi

import "encoding/json"

// The JSON bodies of Firecracker's API. A field that is not a pointer,
// slice or map is required (see decodeBody). Types used both for requests
// and for GET answers keep optional fields as pointers, so an absent value
// reads back as null, as Firecracker writes it.

// instanceInfo is the body of GET /.
type instanceInfo struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	VMMVersion string `json:"vmm_version"`
	AppName    string `json:"app_name"`
}

// Instance states as GET / reports them.
const (
	stateNotStarted = "Not started"
	stateRunning    = "Running"
	statePaused     = "Paused"
)

// appName is what GET / reports as app_name. firecracker-go-sdk requires
// the field but does not look at its value.
const appName = "vireo"

// machineConfig is the body of GET /machine-config and the stored model.
type machineConfig struct {
	VCPUCount       uint8  `json:"vcpu_count"`
	MemSizeMib      uint64 `json:"mem_size_mib"`
	SMT             bool   `json:"smt"`
	CPUTemplate     string `json:"cpu_template,omitempty"`
	TrackDirtyPages bool   `json:"track_dirty_pages"`
	HugePages       string `json:"huge_pages"`
}

// Firecracker's defaults before any PUT /machine-config.
const (
	defaultVCPUs  = 1
	defaultMemMiB = 128
)

// machineConfigPut is the body of PUT /machine-config.
type machineConfigPut struct {
	VCPUCount       uint8   `json:"vcpu_count"`
	MemSizeMib      uint64  `json:"mem_size_mib"`
	SMT             *bool   `json:"smt"`
	CPUTemplate     *string `json:"cpu_template"`
	TrackDirtyPages *bool   `json:"track_dirty_pages"`
	HugePages       *string `json:"huge_pages"`
}

// machineConfigPatch is the body of PATCH /machine-config: every field
// is optional, but at least one must be given.
type machineConfigPatch struct {
	VCPUCount       *uint8  `json:"vcpu_count"`
	MemSizeMib      *uint64 `json:"mem_size_mib"`
	SMT             *bool   `json:"smt"`
	CPUTemplate     *string `json:"cpu_template"`
	TrackDirtyPages *bool   `json:"track_dirty_pages"`
	HugePages       *string `json:"huge_pages"`
}

func (p machineConfigPatch) empty() bool { return p == machineConfigPatch{} }

// patch turns a PUT body into the equivalent full update.
func (p machineConfigPut) patch() machineConfigPatch {
	f := false
	u := machineConfigPatch{
		VCPUCount: &p.VCPUCount, MemSizeMib: &p.MemSizeMib,
		SMT: p.SMT, CPUTemplate: p.CPUTemplate, TrackDirtyPages: p.TrackDirtyPages, HugePages: p.HugePages,
	}
	// PUT replaces the configuration: absent fields take their defaults,
	// except cpu_template, which Firecracker keeps unless it is given.
	if u.HugePages == nil {
		u.HugePages = ptr("None")
	}
	if u.SMT == nil {
		u.SMT = &f
	}
	if u.TrackDirtyPages == nil {
		u.TrackDirtyPages = &f
	}
	return u
}

// bootSource is the body of PUT /boot-source and its stored model.
type bootSource struct {
	KernelImagePath string  `json:"kernel_image_path"`
	InitrdPath      *string `json:"initrd_path"`
	BootArgs        *string `json:"boot_args"`
}

// tokenBucket is one limit of a rate limiter.
type tokenBucket struct {
	Size         uint64  `json:"size"`
	OneTimeBurst *uint64 `json:"one_time_burst"`
	RefillTime   uint64  `json:"refill_time"`
}

// rateLimiter limits a device's bandwidth and operations.
type rateLimiter struct {
	Bandwidth *tokenBucket `json:"bandwidth"`
	Ops       *tokenBucket `json:"ops"`
}

// drive is the body of PUT /drives/{id} and its stored model.
type drive struct {
	DriveID      string       `json:"drive_id"`
	PathOnHost   string       `json:"path_on_host"`
	IsRootDevice bool         `json:"is_root_device"`
	IsReadOnly   *bool        `json:"is_read_only"`
	Partuuid     *string      `json:"partuuid"`
	CacheType    *string      `json:"cache_type"`
	IOEngine     *string      `json:"io_engine"`
	RateLimiter  *rateLimiter `json:"rate_limiter"`
}

// drivePatch is the body of PATCH /drives/{id}.
type drivePatch struct {
	DriveID     string       `json:"drive_id"`
	PathOnHost  *string      `json:"path_on_host"`
	RateLimiter *rateLimiter `json:"rate_limiter"`
}

// networkInterface is the body of PUT /network-interfaces/{id} and its
// stored model.
type networkInterface struct {
	IfaceID       string       `json:"iface_id"`
	HostDevName   string       `json:"host_dev_name"`
	GuestMAC      *string      `json:"guest_mac"`
	RxRateLimiter *rateLimiter `json:"rx_rate_limiter"`
	TxRateLimiter *rateLimiter `json:"tx_rate_limiter"`
}

// networkInterfacePatch is the body of PATCH /network-interfaces/{id}.
type networkInterfacePatch struct {
	IfaceID       string       `json:"iface_id"`
	RxRateLimiter *rateLimiter `json:"rx_rate_limiter"`
	TxRateLimiter *rateLimiter `json:"tx_rate_limiter"`
}

// vsockConfig is the body of PUT /vsock and its stored model. vsock_id is
// deprecated in Firecracker and accepted without effect.
type vsockConfig struct {
	VsockID  *string `json:"vsock_id,omitempty"`
	GuestCID uint32  `json:"guest_cid"`
	UDSPath  string  `json:"uds_path"`
}

// balloonPut is the body of PUT /balloon.
type balloonPut struct {
	AmountMib             uint32  `json:"amount_mib"`
	DeflateOnOOM          bool    `json:"deflate_on_oom"`
	StatsPollingIntervalS *uint16 `json:"stats_polling_interval_s"`
}

// balloonConfig is the stored balloon and the body of GET /balloon.
type balloonConfig struct {
	AmountMib             uint32 `json:"amount_mib"`
	DeflateOnOOM          bool   `json:"deflate_on_oom"`
	StatsPollingIntervalS uint16 `json:"stats_polling_interval_s"`
}

// balloonPatch is the body of PATCH /balloon.
type balloonPatch struct {
	AmountMib uint32 `json:"amount_mib"`
}

// balloonStatsPatch is the body of PATCH /balloon/statistics.
type balloonStatsPatch struct {
	StatsPollingIntervalS uint16 `json:"stats_polling_interval_s"`
}

// loggerPut is the body of PUT /logger. log_path may be left out to
// change only the level or format.
type loggerPut struct {
	LogPath       *string `json:"log_path"`
	Level         *string `json:"level"`
	ShowLevel     *bool   `json:"show_level"`
	ShowLogOrigin *bool   `json:"show_log_origin"`
}

// loggerConfig is the stored logger configuration.
type loggerConfig struct {
	LogPath       string `json:"log_path"`
	Level         string `json:"level"`
	ShowLevel     bool   `json:"show_level"`
	ShowLogOrigin bool   `json:"show_log_origin"`
}

// metricsConfig is the body of PUT /metrics and its stored model.
type metricsConfig struct {
	MetricsPath string `json:"metrics_path"`
}

// actionBody is the body of PUT /actions.
type actionBody struct {
	ActionType string `json:"action_type"`
}

// vmStateBody is the body of PATCH /vm.
type vmStateBody struct {
	State string `json:"state"`
}

// versionInfo is the body of GET /version.
type versionInfo struct {
	FirecrackerVersion string `json:"firecracker_version"`
}

// fullConfig is the body of GET /vm/config: every resource, in the shape
// of Firecracker's config file.
type fullConfig struct {
	Balloon           *balloonConfig     `json:"balloon"`
	Drives            []drive            `json:"drives"`
	BootSource        bootSource         `json:"boot-source"`
	Logger            *loggerConfig      `json:"logger"`
	MachineConfig     machineConfig      `json:"machine-config"`
	Metrics           *metricsConfig     `json:"metrics"`
	MMDSConfig        json.RawMessage    `json:"mmds-config"`
	NetworkInterfaces []networkInterface `json:"network-interfaces"`
	Vsock             *vsockConfig       `json:"vsock"`
}

// configFile is Firecracker's --config-file format. Sections Vireo does
// not implement are accepted only when absent or null.
type configFile struct {
	Balloon           *balloonPut        `json:"balloon"`
	Drives            []drive            `json:"drives"`
	BootSource        bootSource         `json:"boot-source"`
	Logger            *loggerPut         `json:"logger"`
	MachineConfig     *machineConfigPut  `json:"machine-config"`
	Metrics           *metricsConfig     `json:"metrics"`
	NetworkInterfaces []networkInterface `json:"network-interfaces"`
	Vsock             *vsockConfig       `json:"vsock"`
	MMDSConfig        json.RawMessage    `json:"mmds-config"`
	CPUConfig         json.RawMessage    `json:"cpu-config"`
	Entropy           json.RawMessage    `json:"entropy"`
	Pmem              json.RawMessage    `json:"pmem"`
	MemoryHotplug     json.RawMessage    `json:"memory-hotplug"`
	Serial            json.RawMessage    `json:"serial"`
}
