;; A WAGI function in WebAssembly text: answers "Hello from Skiff!" with the request's method, path
;; and query, and logs one line per request to stderr (see `skiff logs hello`).
;; Built by `npm run build` into hello.wasm (scripts/build-examples.mjs assembles it with wabt).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (memory (export "memory") 2)

  ;; 0x00..0x3f scratch: iovec at 0x20, nwritten at 0x28, env count at 0x10, env buf size at 0x14
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

  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0x20) (local.get $ptr))
    (i32.store (i32.const 0x24) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0x20) (i32.const 1) (i32.const 0x28))))

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

  ;; writes LABEL VALUE\n to fd 1 when VALUE (a pointer to a C string) is set
  (func $line (param $label i32) (param $value i32)
    (if (i32.eqz (local.get $value)) (then (return)))
    (call $write (i32.const 1) (local.get $label) (i32.const 8))
    (call $write (i32.const 1) (local.get $value) (call $strlen (local.get $value)))
    (call $write (i32.const 1) (i32.const 0x1e0) (i32.const 1)))

  (func $scan_environ
    (local $count i32) (local $size i32) (local $ptrs i32) (local $buf i32) (local $i i32) (local $s i32) (local $need i32)
    (drop (call $environ_sizes_get (i32.const 0x10) (i32.const 0x14)))
    (local.set $count (i32.load (i32.const 0x10)))
    (local.set $size (i32.load (i32.const 0x14)))
    ;; the pointer array and the strings go after the first page; grow only when they do not fit in
    ;; the second, so a typical request leaves memory as it found it and the runtime can reuse the
    ;; instance (it discards instances whose memory grew)
    (local.set $need (i32.add (i32.const 65536) (i32.add (i32.mul (local.get $count) (i32.const 4)) (local.get $size))))
    (if (i32.gt_u (local.get $need) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.div_u (i32.add (i32.sub (local.get $need) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65535)) (i32.const 65536))))))
    (local.set $ptrs (i32.const 65536))
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
    (call $write (i32.const 1) (i32.const 0x100) (i32.const 59))
    (call $line (i32.const 0x1b0) (global.get $method))
    (call $line (i32.const 0x1c0) (global.get $path))
    (if (i32.and (i32.ne (global.get $query) (i32.const 0))
                 (i32.ne (i32.load8_u (global.get $query)) (i32.const 0)))
      (then (call $line (i32.const 0x1d0) (global.get $query))))
    ;; one log line per request on stderr
    (if (i32.and (i32.ne (global.get $method) (i32.const 0)) (i32.ne (global.get $path) (i32.const 0)))
      (then
        (call $write (i32.const 2) (i32.const 0x1f0) (i32.const 14))
        (call $write (i32.const 2) (global.get $method) (call $strlen (global.get $method)))
        (call $write (i32.const 2) (i32.const 0x200) (i32.const 1))
        (call $write (i32.const 2) (global.get $path) (call $strlen (global.get $path)))
        (call $write (i32.const 2) (i32.const 0x1e0) (i32.const 1))))))
