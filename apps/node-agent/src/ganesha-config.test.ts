import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GaneshaConfigError, ganeshaExports } from './ganesha-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onehost-ganesha-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function conf(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('ganeshaExports', () => {
  it('reads Export_Id and Path of each NFSv3 EXPORT, whatever the case, comments and quoting', async () => {
    const file = await conf(
      'a.conf',
      `# lab node
NFS_CORE_PARAM { Protocols = 3; Enable_NLM = false; MNT_Port = 20050; }
NFSV4 { Graceless = true; }
EXPORT {
  Export_Id = 11;            # the id in the handles
  Path = "/srv/projects/";
  Pseudo = /projects;
  Protocols = 3, 4;
  Transports = TCP, UDP;
  FSAL { Name = VFS; }
  CLIENT { Clients = 203.0.113.0/24; Access_Type = RW; }
}
export { export_id = 12; path = /srv/home; protocols = NFSv3 }
EXPORT { Export_Id = 13; Path = /srv/v4only; Protocols = 4; FSAL { Name = VFS; } }
`,
    );
    expect(await ganeshaExports(file)).toEqual([
      { path: '/srv/projects', exportId: 11 },
      { path: '/srv/home', exportId: 12 },
    ]);
  });

  it('takes the Pseudo path when MOUNT uses it, follows %include, applies EXPORT_DEFAULTS', async () => {
    await conf('exports.conf', 'EXPORT { Export_Id = 2; Path = /data/b; Pseudo = /b; }\n');
    const file = await conf(
      'b.conf',
      `NFS_CORE_PARAM { Mount_Path_Pseudo = true; }
EXPORT_DEFAULTS { Protocols = 4; }
EXPORT { Export_Id = 1; Path = /data/a; Pseudo = /a; Protocols = 3; }
EXPORT { Export_Id = 9; Path = /data/c; }
%include "exports.conf"
`,
    );
    // /data/c inherits NFSv4 only; the included export inherits it as well.
    expect(await ganeshaExports(file)).toEqual([{ path: '/a', exportId: 1 }]);
  });

  it('finds nothing when the server does not speak NFSv3', async () => {
    const file = await conf(
      'c.conf',
      'NFS_CORE_PARAM { Protocols = 4; }\nEXPORT { Export_Id = 1; Path = /a; }\n',
    );
    expect(await ganeshaExports(file)).toEqual([]);
  });

  it('names the file and line of what it cannot use', async () => {
    const cases: [string, string][] = [
      ['EXPORT {\n  Path = /a;\n}\n', 'd.conf:1: EXPORT without a numeric Export_Id'],
      ['\n\nEXPORT { Export_Id = 4; Path = relative; }', 'd.conf:3: EXPORT 4 has no absolute Path'],
      ['EXPORT { Export_Id = 4; Path = /a;\n', 'a block is not closed before the end of the file'],
      ['EXPORT { Export_Id = 4; Path = "/a; }', 'd.conf:1: unterminated string'],
      ['\n}\n', 'd.conf:2: "}" without a block'],
      ['EXPORT { Export_Id 4; }', 'd.conf:1: "Export_Id" is neither a block nor a parameter'],
    ];
    for (const [text, message] of cases) {
      const file = await conf('d.conf', text);
      const err = await ganeshaExports(file).catch((e: unknown) => e);
      expect(err, text).toBeInstanceOf(GaneshaConfigError);
      expect((err as Error).message, text).toContain(message);
    }
    await expect(ganeshaExports(join(dir, 'missing.conf'))).rejects.toThrow('missing.conf: ENOENT');
  });
});
