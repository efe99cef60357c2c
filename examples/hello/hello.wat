;; A WAGI function in WebAssembly text: answers "Hello from Skiff!" with the request's method, path
;; and query, and logs one line per request to stderr (see `skiff logs hello`).
;; Built by `npm run build` into hello.wasm (scripts/build-examples.mjs assembles it with wabt).
;;
;; Like a C program with buffered stdio, it gathers its response and writes it with one fd_write
;; (a list of pieces), and its log line with another.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; 0x00..0x3f scratch: env count at 0x10, env buf size at 0x14, nwritten at 0x28
  ;; 0x400..0x4ff the pieces (iovecs) of the next write; 0x1000.. the environment
  (data (i32.const 0x100) "Content-Type: text/plain; charset=utf-8\n\nHello from Skiff!\n")  ;; 59 bytes
  (data (i32.const 0x180) "REQUEST_METHOD=")  ;; 15
  (data (i32.const 0x190) "PATH_INFO=")       ;; 10
  (data (i32.const 0x1a0) "QUERY_STRING=")    ;; 13
  (data (i32.const 0x1b0) "method: ")         ;; 8
  (data (i32.const 0x1c0) "path:   ")         ;; 8
  (data (i32.const 0x1d0) "query:  ")         ;; 8
  (data (i32.const 0x1e0) "\n")               ;; 1
  (data (i32.const 0x1f0) "hello: served ")   ;; 14
  (data (i32.const 0x200) " ")                ;; 1

  (global $method (mut i32) (i32.const 0))
  (global $path (mut i32) (i32.const 0))
  (global $query (mut i32) (i32.const 0))
  ;; pieces gathered so far for the next write
  (global $pieces (mut i32) (i32.const 0))

  (func $piece (param $ptr i32) (param $len i32)
    (local $at i32)
    (local.set $at (i32.add (i32.const 0x400) (i32.mul (global.get $pieces) (i32.const 8))))
    (i32.store (local.get $at) (local.get $ptr))
    (i32.store (i32.add (local.get $at) (i32.const 4)) (local.get $len))
    (global.set $pieces (i32.add (global.get $pieces) (i32.const 1))))

  (func $flush (param $fd i32)
    (drop (call $fd_write (local.get $fd) (i32.const 0x400) (global.get $pieces) (i32.const 0x28)))
    (global.set $pieces (i32.const 0)))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; 1 when the NUL-terminated string at $s starts with the $len bytes at $prefix
  (func $starts_with (param $s i32) (param $prefix i32) (param $len i32) (result i32)
    (local $i i32)
    (block $no
      (loop $next
        (if (i32.ge_u (local.get $i) (local.get $len)) (then (return (i32.const 1))))
        (br_if $no (i32.ne (i32.load8_u (i32.add (local.get $s) (local.get $i)))
                           (i32.load8_u (i32.add (local.get $prefix) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; adds LABEL VALUE\n to the response when VALUE (a pointer to a C string) is set
  (func $line (param $label i32) (param $value i32)
    (if (i32.eqz (local.get $value)) (then (return)))
    (call $piece (local.get $label) (i32.const 8))
    (call $piece (local.get $value) (call $strlen (local.get $value)))
    (call $piece (i32.const 0x1e0) (i32.const 1)))

  (func $scan_environ
    (local $count i32) (local $size i32) (local $ptrs i32) (local $buf i32) (local $i i32) (local $s i32) (local $need i32)
    (drop (call $environ_sizes_get (i32.const 0x10) (i32.const 0x14)))
    (local.set $count (i32.load (i32.const 0x10)))
    (local.set $size (i32.load (i32.const 0x14)))
    ;; the pointer array and the strings go at 0x1000; grow only when they do not fit in the page,
    ;; so a typical request leaves memory as it found it and the runtime can reuse the instance (it
    ;; discards instances whose memory grew)
    (local.set $need (i32.add (i32.const 0x1000) (i32.add (i32.mul (local.get $count) (i32.const 4)) (local.get $size))))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.div_u (i32.add (i32.sub (local.get $need) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65535)) (i32.const 65536))))))
    (local.set $ptrs (i32.const 0x1000))
    (local.set $buf (i32.add (local.get $ptrs) (i32.mul (local.get $count) (i32.const 4))))
    (drop (call $environ_get (local.get $ptrs) (local.get $buf)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $s (i32.load (i32.add (local.get $ptrs) (i32.mul (local.get $i) (i32.const 4)))))
        (if (call $starts_with (local.get $s) (i32.const 0x180) (i32.const 15))
          (then (global.set $method (i32.add (local.get $s) (i32.const 15)))))
        (if (call $starts_with (local.get $s) (i32.const 0x190) (i32.const 10))
          (then (global.set $path (i32.add (local.get $s) (i32.const 10)))))
        (if (call $starts_with (local.get $s) (i32.const 0x1a0) (i32.const 13))
          (then (global.set $query (i32.add (local.get $s) (i32.const 13)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  (func (export "_start")
    (call $scan_environ)
    (call $piece (i32.const 0x100) (i32.const 59))
    (call $line (i32.const 0x1b0) (global.get $method))
    (call $line (i32.const 0x1c0) (global.get $path))
    (if (i32.and (i32.ne (global.get $query) (i32.const 0))
                 (i32.ne (i32.load8_u (global.get $query)) (i32.const 0)))
      (then (call $line (i32.const 0x1d0) (global.get $query))))
    (call $flush (i32.const 1))
    ;; one log line per request on stderr
    (if (i32.and (i32.ne (global.get $method) (i32.const 0)) (i32.ne (global.get $path) (i32.const 0)))
      (then
        (call $piece (i32.const 0x1f0) (i32.const 14))
        (call $piece (global.get $method) (call $strlen (global.get $method)))
        (call $piece (i32.const 0x200) (i32.const 1))
        (call $piece (global.get $path) (call $strlen (global.get $path)))
        (call $piece (i32.const 0x1e0) (i32.const 1))
        (call $flush (i32.const 2))))))
