// Package session decides who produces a segment and keeps that decision
// safe across pods (DESIGN.md, "The lease protocol").
//
// The Manager (manager.go) owns this pod's jobs. A job (job.go) is one
// (play session, variant): one goroutine that creates the job's record in
// the Store, runs the transcoder (again at a new start segment after a seek)
// and settles the record when it ends. Segments of an item and variant live
// in one directory shared by every session, so a job only writes segments
// that do not exist; two local jobs never write the same segment at once
// (claims), and every segment is committed in the store before it is
// published, so a job whose lease was lost publishes nothing more.
//
// Throttling is JobSpec.Next: a job pauses while it is ahead_segments past
// the highest segment its viewer asked for, and ends after idle_timeout with
// no request. A request behind the job, or farther ahead than
// ahead_segments, is a seek: the run restarts at the requested segment.
//
// MemoryStore (memstore.go) is the in-process Store with the real lease
// semantics; store plugins are checked against the same behaviour.
package session
