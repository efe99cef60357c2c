import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { resolveImageUser } from '../../src/workloads/image/user.js';

const dirs: string[] = [];
function rootfs(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'skiff-user-'));
  dirs.push(root);
  mkdirSync(join(root, 'etc'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(root, name), content);
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(root, name));
  return root;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\n# a comment\nwww:x:33:33:www:/var/www:/bin/false\napp:x:1000:1500::/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\nwww:x:33:\nstaff:x:50:app\n';

describe("resolveImageUser reads an image's config.User as a container engine does", () => {
  const root = rootfs({ 'etc/passwd': PASSWD, 'etc/group': GROUP });

  it.each([
    [undefined, { uid: 0, gid: 0 }],
    ['', { uid: 0, gid: 0 }],
    ['www', { uid: 33, gid: 33 }],
    ['app', { uid: 1000, gid: 1500 }],
    ['app:staff', { uid: 1000, gid: 50 }],
    ['app:7', { uid: 1000, gid: 7 }],
    ['1000', { uid: 1000, gid: 1500 }],
    ['4242', { uid: 4242, gid: 0 }],
    ['4242:4243', { uid: 4242, gid: 4243 }],
    ['4242:www', { uid: 4242, gid: 33 }],
  ])('%s → %j', (user, want) => {
    expect(resolveImageUser(root, user, 'image x')).toEqual(want);
  });

  it.each([
    ['nobody-here', /user "nobody-here", which the image's \/etc\/passwd does not have/],
    ['app:wheel', /group "wheel", which the image's \/etc\/group does not have/],
    ['a:b:c', /must be USER, USER:GROUP, UID or UID:GID/],
    [':5', /must be USER/],
    ['99999999999', /user "99999999999"/],
  ])('refuses %s, naming the image and what to do', (user, message) => {
    expect(() => resolveImageUser(root, user, 'image oci://r/x@sha256:ab')).toThrow(message);
    expect(() => resolveImageUser(root, user, 'image oci://r/x@sha256:ab')).toThrow(/^image oci:\/\/r\/x@sha256:ab: config.User/);
  });

  it("never reads account files through a symlink (which could name the host's)", () => {
    const host = rootfs({ 'etc/passwd': 'hostonly:x:4000:4000::/:/bin/sh\n' });
    const linked = rootfs({}, { 'etc/passwd': join(host, 'etc/passwd') });
    expect(() => resolveImageUser(linked, 'hostonly', 'image y')).toThrow(/does not have/);
    const etcLinked = mkdtempSync(join(tmpdir(), 'skiff-user-'));
    dirs.push(etcLinked);
    symlinkSync(join(host, 'etc'), join(etcLinked, 'etc'));
    expect(() => resolveImageUser(etcLinked, 'hostonly', 'image y')).toThrow(/does not have/);
    // Numeric ids need no account file at all.
    expect(resolveImageUser(etcLinked, '4000:4000', 'image y')).toEqual({ uid: 4000, gid: 4000 });
  });
});
