package legacy

// writer copies transmitted bytes to out until Close, then drains what is
// left and exits. Only this goroutine writes to out, so bytes keep their
// order and s.mu is never held across a possibly blocking Write.
func (s *Serial) writer() {
	defer close(s.exited)
	for {
		select {
		case <-s.kick:
			s.drain()
		case <-s.stop:
			s.drain()
			return
		}
	}
}

// drain writes out everything queued in tx.
func (s *Serial) drain() {
	for {
		s.mu.Lock()
		wasFull := s.tx.full()
		n := s.tx.read(s.scratch[:])
		if n == 0 {
			s.writing = false
			s.idle.Broadcast()
			s.mu.Unlock()
			return
		}
		s.writing = true
		if wasFull && s.ier&ierETBEI != 0 {
			// THR became empty again: raise the THR-empty interrupt.
			s.thrPending = true
			s.updateIRQ()
		}
		s.mu.Unlock()
		_, _ = s.out.Write(s.scratch[:n]) // console output is best effort
	}
}

// Flush waits until every byte the guest has transmitted so far has been
// written to the output. Call it before taking State if output must not be
// lost, and before closing the output. It returns at once after Close.
func (s *Serial) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	for s.tx.len() > 0 || s.writing {
		s.idle.Wait()
	}
}

// Close stops the output goroutine after it has written all queued bytes.
// Later transmitted bytes are dropped. Close is idempotent.
func (s *Serial) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
	})
	<-s.exited
	return nil
}
