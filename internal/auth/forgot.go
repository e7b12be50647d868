package auth

import (
	"context"
	"sync"
	"time"
)

// The forgot-password queue. SPEC §4 wants the answer before any per-account work, so
// known and unknown addresses take the same time; the work is then done here, after
// the answer, by at most forgotWorkers goroutines. At most forgotQueueLen requests
// wait; beyond that a request is dropped with a log line (its client already got the
// same 202 as everyone). A flood therefore costs a bounded amount of memory and
// goroutines, and never more database work than the workers can do.
const (
	forgotWorkers  = 2
	forgotQueueLen = 256
)

type forgotJob struct {
	client Client
	email  string
}

type forgotQueue struct {
	mu      sync.Mutex
	jobs    []forgotJob
	workers int
	dropped int64
}

// enqueue adds a job and starts a worker if fewer than forgotWorkers run. Workers
// exit when the queue is empty, so an idle Service holds no goroutine; Wait waits for
// them.
func (q *forgotQueue) enqueue(s *Service, j forgotJob) {
	q.mu.Lock()
	if len(q.jobs) >= forgotQueueLen {
		q.dropped++
		n := q.dropped
		q.mu.Unlock()
		s.log.Warn("forgot-password queue is full; request dropped", "ip", j.client.IP, "dropped_total", n)
		return
	}
	q.jobs = append(q.jobs, j)
	start := q.workers < forgotWorkers
	if start {
		q.workers++
		s.mailWG.Add(1)
	}
	q.mu.Unlock()
	if start {
		go q.work(s)
	}
}

func (q *forgotQueue) work(s *Service) {
	defer s.mailWG.Done()
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.workers--
			q.jobs = nil // let a burst's backing array go
			q.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.forgotPassword(ctx, j.client, j.email)
		cancel()
	}
}
