package metrics

// Snapshot is every counter of one VM at one moment: its vCPUs' exits and
// each virtio device's requests, bytes and errors. Counters are totals
// since the device (or the vCPU) was created: disks keep theirs across
// guest resets, the other devices and the vCPUs are rebuilt with the
// machine and start again from zero. Absent devices are nil or empty.
type Snapshot struct {
	VCPUs    []VCPU    `json:"vcpus"`
	Disks    []Block   `json:"block"`
	Nets     []Net     `json:"net"`
	Consoles []Console `json:"console"`
	Vsock    *Vsock    `json:"vsock,omitempty"`
	RNG      *RNG      `json:"rng,omitempty"`
	Balloon  *Balloon  `json:"balloon,omitempty"`
}

// VCPU is one vCPU's exits to the VMM.
type VCPU struct {
	Index int   `json:"cpu-index"`
	Exits Exits `json:"exits"`
}

// Exits counts a vCPU's exits from KVM_RUN by reason: port I/O, MMIO,
// HLT, interruptions (a signal or a kick) and all others.
type Exits struct {
	IO    uint64 `json:"io"`
	MMIO  uint64 `json:"mmio"`
	HLT   uint64 `json:"hlt"`
	Intr  uint64 `json:"intr"`
	Other uint64 `json:"other"`
}

// Total is the number of exits of every kind.
func (e Exits) Total() uint64 { return e.IO + e.MMIO + e.HLT + e.Intr + e.Other }

// Add returns the sum of e and o.
func (e Exits) Add(o Exits) Exits {
	return Exits{IO: e.IO + o.IO, MMIO: e.MMIO + o.MMIO, HLT: e.HLT + o.HLT, Intr: e.Intr + o.Intr, Other: e.Other + o.Other}
}

// Block is a virtio-blk disk's I/O.
type Block struct {
	ID          string  `json:"id"`
	Read        BlockOp `json:"read"`
	Write       BlockOp `json:"write"`
	Flush       BlockOp `json:"flush"`
	Discard     BlockOp `json:"discard"`
	WriteZeroes BlockOp `json:"write-zeroes"`
	// Invalid counts requests refused without reaching the image:
	// malformed chains, short headers, ranges beyond the disk, writes to
	// a read-only disk.
	Invalid uint64 `json:"invalid"`
	// HighestWrite is the end of the highest range written so far, in
	// bytes (QEMU's wr_highest_offset).
	HighestWrite uint64 `json:"highest-write-offset"`
}

// BlockOp counts one kind of block request.
type BlockOp struct {
	Ops    uint64 `json:"operations"` // completed successfully
	Bytes  uint64 `json:"bytes"`      // moved (or discarded, or zeroed) by them
	Failed uint64 `json:"failed"`     // failed with a host I/O error
	TimeNs uint64 `json:"total-time-ns"`
}

// Net is a virtio-net device's traffic, summed over its queue pairs.
// Bytes count frames without the virtio-net header.
type Net struct {
	ID        string `json:"id"`
	RxPackets uint64 `json:"rx-packets"`
	RxBytes   uint64 `json:"rx-bytes"`
	RxDropped uint64 `json:"rx-dropped"`
	TxPackets uint64 `json:"tx-packets"`
	TxBytes   uint64 `json:"tx-bytes"`
	TxDropped uint64 `json:"tx-dropped"`
}

// Vsock is the virtio-vsock device's traffic. Rx is toward the guest,
// Tx from it; bytes count payloads.
type Vsock struct {
	RxPackets    uint64 `json:"rx-packets"`
	RxBytes      uint64 `json:"rx-bytes"`
	TxPackets    uint64 `json:"tx-packets"`
	TxBytes      uint64 `json:"tx-bytes"`
	ConnsAdded   uint64 `json:"conns-added"`
	ConnsRemoved uint64 `json:"conns-removed"`
	// Resets counts RST packets, sent to the guest or received from it.
	Resets uint64 `json:"resets"`
}

// Console is a virtio-console device's bytes: Rx from the host to the
// guest, Tx from the guest to the host. ID is "console" for the
// single-port console and "channels" for the channels' device.
type Console struct {
	ID      string `json:"id"`
	RxBytes uint64 `json:"rx-bytes"`
	TxBytes uint64 `json:"tx-bytes"`
}

// RNG is the virtio-rng device's requests and the bytes it supplied.
type RNG struct {
	Requests uint64 `json:"requests"`
	Bytes    uint64 `json:"bytes"`
}

// Balloon is the virtio-balloon device's activity.
type Balloon struct {
	Inflates      uint64 `json:"inflates"`       // inflate requests (buffers of page numbers)
	Deflates      uint64 `json:"deflates"`       // deflate requests
	InflatedPages uint64 `json:"inflated-pages"` // 4 KiB pages put in the balloon
	DeflatedPages uint64 `json:"deflated-pages"` // and taken back
	InvalidPages  uint64 `json:"invalid-pages"`  // outside guest RAM, ignored
	StatsUpdates  uint64 `json:"stats-updates"`  // statistics reports received
	Discarded     uint64 `json:"discarded"`      // bytes returned to the host after inflates
	Reported      uint64 `json:"reported"`       // bytes returned after free page reports
	Failures      uint64 `json:"failures"`       // times the device asked for a reset
}
