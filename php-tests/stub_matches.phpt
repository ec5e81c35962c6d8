--TEST--
stubs/session_proxy.stub.php and the loaded extension agree: classes, parents, interfaces, methods, parameters, types, functions, INI directives
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

// The same description is computed twice: from the extension (in this process) and from the stub file
// (in a child PHP without the extension, where the stub's classes are the only ones of that name).
$describe = <<<'PHP'
function sp_describe(array $classes): array {
    $out = [];
    foreach ($classes as $c) {
        $r = new ReflectionClass($c);
        $d = ['parent' => $r->getParentClass() ? $r->getParentClass()->getName() : null,
              'interfaces' => $r->getInterfaceNames(), 'final' => $r->isFinal(), 'abstract' => $r->isAbstract(),
              'methods' => []];
        sort($d['interfaces']);
        foreach ($r->getMethods() as $m) {
            if ($m->getDeclaringClass()->getName() !== $r->getName()) continue;
            $params = [];
            foreach ($m->getParameters() as $p) {
                $params[] = ($p->getType() ?? 'mixed') . ' $' . $p->getName()
                    . ($p->isOptional() ? ' = ' . var_export($p->getDefaultValue(), true) : '');
            }
            $d['methods'][$m->getName()] = implode(', ', $params) . ' : ' . ($m->getReturnType() ?? '-')
                . ($m->isPublic() ? '' : ' non-public') . ($m->isStatic() ? ' static' : '');
        }
        ksort($d['methods']);
        $out[$c] = $d;
    }
    return $out;
}
function sp_describe_functions(): array {
    $out = [];
    foreach (array_merge(...array_values(get_defined_functions())) as $f) {
        if (!str_starts_with($f, 'sessionproxy\\')) continue;
        $r = new ReflectionFunction($f);
        $params = array_map(fn($p) => ($p->getType() ?? 'mixed') . ' $' . $p->getName(), $r->getParameters());
        $out[$r->getName()] = implode(', ', $params) . ' : ' . ($r->getReturnType() ?? '-');
    }
    ksort($out);
    return $out;
}
PHP;
eval($describe);
$classes = ['SessionProxy\Exception', 'SessionProxy\Handler'];
$loaded = sp_describe($classes);
$loadedFunctions = sp_describe_functions();

$stub = dirname(__DIR__) . '/stubs/session_proxy.stub.php';
$cmd = escapeshellarg(sp_php_binary()) . ' -n -r ' . escapeshellarg(
    $describe . 'require ' . var_export($stub, true) . '; echo json_encode([sp_describe('
    . var_export($classes, true) . '), sp_describe_functions()]);'
);
[$fromStub, $stubFunctions] = json_decode(sp_run($cmd), true);
echo "classes and methods agree: ", var_export($loaded === $fromStub, true), "\n";
if ($loaded !== $fromStub) {
    echo "extension: ", json_encode($loaded, JSON_PRETTY_PRINT), "\nstub: ", json_encode($fromStub, JSON_PRETTY_PRINT), "\n";
}

echo "functions agree: ", var_export($loadedFunctions === $stubFunctions, true), "\n";
if ($loadedFunctions !== $stubFunctions) {
    var_dump($loadedFunctions, $stubFunctions);
}
echo implode("\n", array_map(fn($k, $v) => "$k($v)", array_keys($loadedFunctions), $loadedFunctions)), "\n";

// INI directives: the stub's @ini lines against ini_get_all().
preg_match_all('/@ini (\S+) =[ \t]*(\S*)/', file_get_contents($stub), $m, PREG_SET_ORDER);
$stubIni = [];
foreach ($m as [, $name, $default]) {
    $stubIni[$name] = in_array($default, ['""', "''"], true) ? '' : $default;
}
$extIni = array_map(fn($e) => $e['global_value'], ini_get_all('session_proxy'));
ksort($stubIni);
ksort($extIni);
echo "INI directives agree: ", var_export($stubIni === $extIni, true), "\n";
if ($stubIni !== $extIni) {
    var_dump($stubIni, $extIni);
}
echo count($loaded['SessionProxy\Handler']['methods']), " Handler methods, ", count($loaded['SessionProxy\Exception']['methods']), " Exception methods, ", count($extIni), " directives\n";
// The exception is a plain subclass: constructible from PHP with InvalidArgumentException's constructor.
$e = new SessionProxy\Exception('m', 7);
echo get_class($e), ' ', $e->getMessage(), ' ', $e->getCode(), ' ', var_export($e instanceof InvalidArgumentException, true), "\n";
?>
--EXPECT--
classes and methods agree: true
functions agree: true
SessionProxy\count_active(int $seconds : mixed)
SessionProxy\destroy_session_handle(string $handle : bool)
SessionProxy\destroy_user_sessions(string $user, bool $keep_current : mixed)
SessionProxy\set_user(string $user : void)
SessionProxy\stats( : array)
SessionProxy\stats_prometheus( : string)
SessionProxy\user_sessions(string $user : mixed)
INI directives agree: true
15 Handler methods, 0 Exception methods, 14 directives
SessionProxy\Exception m 7 true
