import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {DEFAULT_TEMPLATES_DIR, listTemplates} from '../services/codegen/render.js';
import {gen} from '../services/codegen/gen.js';

export default class Gen extends TacosCommand {
  static override summary = 'Generate client stubs from proto/ through templates/.';
  static override description =
    'Reads proto/ with protobufjs (no protoc) into one model and renders each template with it (Handlebars). Output is deterministic, starts with a do-not-edit header, and is written atomically; unchanged files are left alone. --check exits 1 naming the files that are stale.';
  static override examples = [
    '<%= config.bin %> gen --list',
    '<%= config.bin %> gen --template ts-grpc-js --out src/generated/contracts',
    '<%= config.bin %> gen --template go-grpc --out ../gateway-api',
    '<%= config.bin %> gen --template ts-grpc-js --check',
    '<%= config.bin %> gen --dry-run',
  ];
  static override flags = {
    template: Flags.string({char: 't', description: 'Template to render (default: all of them).'}),
    out: Flags.string({char: 'o', description: "Output dir (default: the template's own)."}),
    proto: Flags.string({description: 'The proto dir (default: proto/ of tacos).', helpValue: 'DIR'}),
    templates: Flags.string({description: 'The templates dir (default: templates/ of tacos).', helpValue: 'DIR'}),
    list: Flags.boolean({description: 'List the templates.'}),
    'dry-run': Flags.boolean({description: 'List what would be written; write nothing.'}),
    check: Flags.boolean({description: 'Fail (exit 1) naming the files that differ from what would be generated.'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(Gen);
    if (flags.list) {
      for (const template of await listTemplates(flags.templates ?? DEFAULT_TEMPLATES_DIR))
        this.log(`${template.name}  (→ ${template.defaultOut})\n  ${template.description}`);
      return;
    }
    const mode = flags.check ? 'check' : flags['dry-run'] ? 'dry-run' : 'write';
    const results = await gen({
      template: flags.template,
      outDir: flags.out,
      protoDir: flags.proto,
      templatesDir: flags.templates,
      mode,
    });
    for (const result of results) {
      if (mode === 'dry-run') for (const file of result.files) this.log(`would write ${file}`);
      else if (mode === 'check')
        this.log(`${result.template}: ${result.files.length} files up to date in ${result.outDir}`);
      else
        this.log(
          `${result.template}: ${result.written.length} written, ${result.unchanged.length} unchanged${result.removed.length ? `, ${result.removed.length} removed (no longer generated)` : ''} in ${result.outDir}`,
        );
    }
  }
}
