;; takeover-wat: a wasmhls takeover policy written by hand in WebAssembly
;; text, to show that the plugin ABI (docs/PLUGINS.md) needs nothing from Go.
;;
;; Policy: answer "takeover" when the job's record says state "released",
;; otherwise "proxy". It never takes over an active lease, so it is safe,
;; but it also never takes over an expired one (the built-in
;; takeover-lease does): it is an example, not a production policy.
;;
;; Limitation: it does not parse JSON. It scans the request for the exact
;; bytes "state":"released" — which is how the host's encoding/json writes
;; that field (no spaces). A request written with other spacing, or a
;; different order of escapes, would be read as "not released" and get the
;; safe answer, proxy. A string value cannot fake the match: inside a JSON
;; string every quote is escaped as \".
;;
;; Memory: one page. Static strings live below 1024; wasmhls_malloc is a
;; bump allocator from 1024 that grows memory as needed and wasmhls_free is
;; a no-op. That is enough because the host allocates one request buffer
;; per instance and reuses it, and recycles instances after N calls.
;;
;; Build: wat2wasm takeover.wat -o takeover.wasm
(module
  (memory (export "memory") 1)

  ;; ---- static data: offsets and lengths are used below ----
  (data (i32.const 16)  "{\"name\":\"takeover-wat\",\"kind\":\"takeover\",\"version\":\"1.0.0\",\"abi\":1,\"capabilities\":[]}") ;; 85 bytes
  (data (i32.const 256) "self_test")           ;; 9
  (data (i32.const 272) "decide")              ;; 6
  (data (i32.const 288) "\"state\":\"released\"") ;; 18
  (data (i32.const 320) "{\"status\":\"ok\"}")     ;; 15
  (data (i32.const 352) "{\"status\":\"ok\",\"result\":{\"decision\":\"takeover\",\"reason\":\"released (takeover-wat)\"}}") ;; 83
  (data (i32.const 512) "{\"status\":\"ok\",\"result\":{\"decision\":\"proxy\",\"reason\":\"not released (takeover-wat)\"}}") ;; 84
  (data (i32.const 640) "{\"status\":\"bad_op\",\"error\":\"takeover-wat answers only decide and self_test\"}") ;; 76

  ;; next free byte of the bump allocator
  (global $heap (mut i32) (i32.const 1024))

  ;; pack(ptr, len) = ptr<<32 | len, the ABI's way to return a buffer
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))

  ;; eq(a, b, n): the n bytes at a and b are equal
  (func $eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; is(ptr, len, s, slen): the string at ptr is exactly s
  (func $is (param $ptr i32) (param $len i32) (param $s i32) (param $slen i32) (result i32)
    (if (result i32) (i32.ne (local.get $len) (local.get $slen))
      (then (i32.const 0))
      (else (call $eq (local.get $ptr) (local.get $s) (local.get $len)))))

  ;; contains(hay, n, needle, m): needle occurs in hay
  (func $contains (param $hay i32) (param $n i32) (param $needle i32) (param $m i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $n) (local.get $m)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (local.get $i) (i32.sub (local.get $n) (local.get $m))))
        (if (call $eq (i32.add (local.get $hay) (local.get $i)) (local.get $needle) (local.get $m))
          (then (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "wasmhls_abi_version") (result i32) (i32.const 1))

  (func (export "wasmhls_describe") (result i64)
    (call $pack (i32.const 16) (i32.const 85)))

  ;; bump allocator, 8-byte aligned, growing memory when the heap is full
  (func (export "wasmhls_malloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $have i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.and (i32.add (i32.add (local.get $ptr) (local.get $size)) (i32.const 7))
                             (i32.const -8)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16))
                                          (i32.const 1)))
                    (i32.const -1))
          (then (unreachable)))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "wasmhls_free") (param $ptr i32))

  (func (export "wasmhls_call") (param $op i32) (param $oplen i32) (param $req i32) (param $reqlen i32) (result i64)
    (if (call $is (local.get $op) (local.get $oplen) (i32.const 256) (i32.const 9))
      (then (return (call $pack (i32.const 320) (i32.const 15)))))
    (if (call $is (local.get $op) (local.get $oplen) (i32.const 272) (i32.const 6))
      (then
        (if (call $contains (local.get $req) (local.get $reqlen) (i32.const 288) (i32.const 18))
          (then (return (call $pack (i32.const 352) (i32.const 83)))))
        (return (call $pack (i32.const 512) (i32.const 84)))))
    (call $pack (i32.const 640) (i32.const 76)))
)
