package vcpu

// ThreadID is the host thread id (Linux TID) of the vCPU's locked OS
// thread, as management APIs report it (QMP query-cpus-fast thread-id).
// It is fixed for the vCPU's lifetime and valid once Start has returned.
func (v *VCPU) ThreadID() int { return int(v.tid.Load()) }
