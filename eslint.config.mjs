import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'No default exports: name what you export.' },
        { selector: 'ExportAllDeclaration', message: 'No export *: list what a module exposes.' },
      ],
    },
  },
  {
    // Tool configuration files must default-export.
    files: ['vitest*.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['src/aeron/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['../*', '@grpc/*'], message: 'src/aeron stands alone: no imports from the rest of the project or gRPC.' },
      ] }],
    },
  },
  {
    files: ['src/retry/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { regex: '^(\\.\\./(?!util/)|@grpc/)', message: 'src/retry is a leaf: it knows only the clock (src/util).' },
      ] }],
    },
  },
  {
    files: ['src/collector/tail*.ts', 'src/collector/file-*.ts', 'src/collector/checkpoint*.ts', 'src/collector/line*.ts', 'src/collector/read-loop.ts', 'src/collector/chunk-*.ts', 'src/spool/**/*.ts', 'src/batcher/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@grpc/*'], message: 'Tailing, spool and batching know nothing of gRPC.' },
      ] }],
    },
  },
);
